//! Find a person by part of their name or email, their user id, or a card GUID.

use leptos::{ev::SubmitEvent, prelude::*};
use protocol::ra::UserSummary;

use super::api;
use crate::components::ErrorSummary;

#[component]
pub fn Search() -> impl IntoView {
    let query = RwSignal::new(String::new());
    let results = RwSignal::new(None::<Vec<UserSummary>>);
    let error = RwSignal::new(None::<String>);
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let q = query.get_untracked();
        leptos::task::spawn_local(async move {
            match api::search(&q).await {
                Ok(found) => {
                    error.set(None);
                    results.set(Some(found));
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <h1>"Find a person"</h1>
        <ErrorSummary message=error.into() field="ra-query" />
        <form novalidate on:submit=on_submit>
            <div class="nhsuk-form-group">
                <label class="nhsuk-label" for="ra-query">"Name, email, user id or card GUID"</label>
                <input class="nhsuk-input" id="ra-query" type="search" autocomplete="off"
                    prop:value=move || query.get() on:input=move |ev| query.set(event_target_value(&ev)) />
            </div>
            <button class="nhsuk-button" type="submit" data-testid="ra-search">"Search"</button>
        </form>
        {move || results.get().map(|found| if found.is_empty() {
            view! { <p data-testid="ra-no-results">"No one matches."</p> }.into_any()
        } else {
            let rows = found.into_iter().map(|u| {
                let href = format!("/ra/users/{}", api::encode(&u.user_id));
                let state = match (u.registered, u.locked_out) {
                    (_, true) => "Locked out of self-service",
                    (true, false) => "Registered",
                    (false, false) => "Not registered",
                };
                view! {
                    <tr>
                        <td><a href=href data-testid="ra-result">{u.name}</a></td>
                        <td>{u.user_id}</td>
                        <td>{u.contact_email.unwrap_or_default()}</td>
                        <td>{state}</td>
                    </tr>
                }
            }).collect_view();
            view! {
                <table class="ra-table">
                    <caption class="nhsuk-u-visually-hidden">"People found"</caption>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"User id"</th><th scope="col">"Contact email"</th><th scope="col">"Self-service"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            }.into_any()
        })}
    }
}
