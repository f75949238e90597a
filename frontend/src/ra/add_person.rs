//! Add a person whose identity the RA has checked, before issuing their first card.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;
use protocol::ra::NewPerson;

use super::{api, ReasonField};
use crate::components::ErrorSummary;

#[component]
pub fn AddPerson() -> impl IntoView {
    let user_id = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let email = email.get_untracked();
        let person = NewPerson {
            user_id: user_id.get_untracked().trim().to_owned(),
            name: name.get_untracked(),
            contact_email: (!email.trim().is_empty()).then_some(email),
            reason: reason.get_untracked(),
        };
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::add_person(&person).await {
                Ok(added) => {
                    navigate(&format!("/ra/users/{}", api::encode(&added.user_id)), Default::default())
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let field = |id: &'static str, label: &'static str, kind: &'static str, value: RwSignal<String>| {
        view! {
            <div class="nhsuk-form-group">
                <label class="nhsuk-label" for=id>{label}</label>
                <input class="nhsuk-input" id=id type=kind autocomplete="off"
                    prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev)) />
            </div>
        }
    };
    view! {
        <h1>"Add a person"</h1>
        <ErrorSummary message=error.into() field="ra-new-user-id" />
        <p>"Only after checking their identity documents. Search first: they may already be here."</p>
        <form novalidate on:submit=on_submit>
            {field("ra-new-user-id", "User id", "text", user_id)}
            {field("ra-new-name", "Full name", "text", name)}
            {field("ra-new-email", "Contact email (optional)", "email", email)}
            <ReasonField id="ra-new-reason" reason />
            <button class="nhsuk-button" type="submit" data-testid="ra-add-person">"Add the person"</button>
        </form>
    }
}
