//! Registrations, unlocks and lockouts per day over a period (what NHS RA managers are given),
//! with a CSV download.

use leptos::{ev::SubmitEvent, prelude::*};
use protocol::{calendar::civil_from_days, ra::Report};

use super::{api, chart::ReportChart};
use crate::components::ErrorSummary;

#[component]
pub fn ReportPage() -> impl IntoView {
    let today = (js_sys::Date::now() / 86_400_000.0).floor() as i64;
    let from = RwSignal::new(civil_from_days(today - 29));
    let to = RwSignal::new(civil_from_days(today));
    let report = RwSignal::new(None::<Report>);
    let error = RwSignal::new(None::<String>);
    let load = move || {
        let (f, t) = (from.get_untracked(), to.get_untracked());
        leptos::task::spawn_local(async move {
            match api::report(&f, &t).await {
                Ok(r) => {
                    error.set(None);
                    report.set(Some(r));
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    load();
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        load();
    };
    let csv_href =
        move || format!("/api/ra/report.csv?from={}&to={}", api::encode(&from.get()), api::encode(&to.get()));
    view! {
        <h1>"Self-service report"</h1>
        <ErrorSummary message=error.into() field="ra-report-from" />
        <form novalidate on:submit=on_submit>
            <div class="nhsuk-form-group ra-filter">
                <label class="nhsuk-label" for="ra-report-from">"From (YYYY-MM-DD)"</label>
                <input class="nhsuk-input" id="ra-report-from" type="text" prop:value=move || from.get() on:input=move |ev| from.set(event_target_value(&ev)) />
            </div>
            <div class="nhsuk-form-group ra-filter">
                <label class="nhsuk-label" for="ra-report-to">"To (YYYY-MM-DD)"</label>
                <input class="nhsuk-input" id="ra-report-to" type="text" prop:value=move || to.get() on:input=move |ev| to.set(event_target_value(&ev)) />
            </div>
            <button class="nhsuk-button" type="submit" data-testid="ra-report-show">"Show"</button>
        </form>
        <p><a href=csv_href rel="external" download="" data-testid="ra-report-csv">"Download as CSV"</a></p>
        {move || report.get().map(|r| {
            let totals = r.totals;
            let chart = view! { <ReportChart days=r.days.clone() totals /> };
            let days = r.days.into_iter().rev().map(|d| view! {
                <tr><td>{d.day}</td><td>{d.counts.registrations}</td><td>{d.counts.unlocks}</td><td>{d.counts.lockouts}</td><td>{d.counts.lockouts_cleared}</td><td>{d.counts.desk_unlocks}</td></tr>
            }).collect_view();
            view! {
                {chart}
                <table class="ra-table" data-testid="ra-report">
                    <caption class="nhsuk-u-visually-hidden">"Counts per day, newest first"</caption>
                    <thead><tr><th scope="col">"Day"</th><th scope="col">"Registrations"</th><th scope="col">"Self-service unlocks"</th><th scope="col">"Lockouts"</th><th scope="col">"Lockouts cleared"</th><th scope="col">"Unlocked at the desk"</th></tr></thead>
                    <tbody>{days}</tbody>
                    <tfoot><tr data-testid="ra-report-total"><th scope="row">"Total"</th><td>{totals.registrations}</td><td>{totals.unlocks}</td><td>{totals.lockouts}</td><td>{totals.lockouts_cleared}</td><td data-testid="ra-report-desk-unlocks">{totals.desk_unlocks}</td></tr></tfoot>
                </table>
            }
        })}
    }
}
