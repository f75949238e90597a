//! The audit trail, overall or for one person, filtered by event and dates, newest first, a
//! page at a time; and the check of its hash chain.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_query_map;
use protocol::ra::AuditRow;

use super::{api, words};
use crate::{
    components::{ErrorSummary, InsetText},
    time::date_time,
};

#[component]
pub fn Audit() -> impl IntoView {
    let query = use_query_map();
    let initial = |key: &str| query.get_untracked().get(key).unwrap_or_default();
    let (user_id, event, from, to) = (
        RwSignal::new(initial("user_id")),
        RwSignal::new(initial("event")),
        RwSignal::new(initial("from")),
        RwSignal::new(initial("to")),
    );
    let rows = RwSignal::new(Vec::<AuditRow>::new());
    let more = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let verification = RwSignal::new(None::<String>);
    let load = move |before: Option<i64>| {
        let query = api::audit_query(
            &user_id.get_untracked(),
            &event.get_untracked(),
            &from.get_untracked(),
            &to.get_untracked(),
            before,
        );
        leptos::task::spawn_local(async move {
            match api::audit(&query).await {
                Ok(page) => {
                    error.set(None);
                    more.set(page.len() >= 100);
                    if before.is_some() {
                        rows.update(|rows| rows.extend(page));
                    } else {
                        rows.set(page);
                    }
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    load(None);
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        load(None);
    };
    let verify = move |_| {
        leptos::task::spawn_local(async move {
            let text = match api::verify_audit().await {
                Ok(v) => match v.first_broken_row {
                    None => format!("The audit trail is intact: all {} rows verify.", v.rows),
                    Some(row) => format!("The audit trail has been altered: row {row} does not verify, so it and every row after it are suspect."),
                },
                Err(e) => e.to_string(),
            };
            verification.set(Some(text));
        });
    };
    let field = |id: &'static str, label: &'static str, hint: &'static str, value: RwSignal<String>| {
        view! {
            <div class="nhsuk-form-group ra-filter">
                <label class="nhsuk-label" for=id>{label}</label>
                <div class="nhsuk-hint">{hint}</div>
                <input class="nhsuk-input" id=id type="text" autocomplete="off"
                    prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev)) />
            </div>
        }
    };
    view! {
        <h1>"Audit trail"</h1>
        <ErrorSummary message=error.into() field="ra-audit-from" />
        <form novalidate on:submit=on_submit>
            {field("ra-audit-user", "User id", "Leave empty for everyone", user_id)}
            <div class="nhsuk-form-group ra-filter">
                <label class="nhsuk-label" for="ra-audit-event">"Event"</label>
                <select class="nhsuk-select" id="ra-audit-event" on:change=move |ev| event.set(event_target_value(&ev))>
                    <option value="" selected=move || event.get().is_empty()>"All events"</option>
                    {words::EVENTS.iter().map(|(code, text)| view! {
                        <option value=*code selected=move || event.get() == *code>{*text}</option>
                    }).collect_view()}
                </select>
            </div>
            {field("ra-audit-from", "From", "YYYY-MM-DD", from)}
            {field("ra-audit-to", "To", "YYYY-MM-DD", to)}
            <button class="nhsuk-button" type="submit" data-testid="ra-audit-filter">"Show"</button>
        </form>
        <button class="nhsuk-button nhsuk-button--secondary" type="button" data-testid="ra-verify" on:click=verify>"Verify the audit trail"</button>
        {move || verification.get().map(|text| view! { <InsetText><p role="status" data-testid="ra-verification">{text}</p></InsetText> })}
        <table class="ra-table" data-testid="ra-audit">
            <caption class="nhsuk-u-visually-hidden">"Audit events, newest first"</caption>
            <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Event"</th><th scope="col">"About"</th><th scope="col">"Details"</th></tr></thead>
            <tbody>
                <For each=move || rows.get() key=|row| row.id let:row>
                    <tr>
                        <td>{date_time(row.at)}</td>
                        <td>{row.actor}</td>
                        <td data-testid="ra-audit-event">{words::event(&row.event)}</td>
                        <td>{row.subject.unwrap_or_default()}</td>
                        <td data-testid="ra-audit-details">{words::details(&row.details)}</td>
                    </tr>
                </For>
            </tbody>
        </table>
        {move || more.get().then(|| view! {
            <button class="nhsuk-button nhsuk-button--secondary" type="button"
                on:click=move |_| load(rows.get_untracked().last().map(|r| r.id))>"Older events"</button>
        })}
    }
}
