//! Pieces of the NHS design system, as components.

use leptos::prelude::*;

/// "There is a problem" at the top of a form, focused when it appears so screen readers say it.
#[component]
pub fn ErrorSummary(message: Signal<Option<String>>, #[prop(into)] field: String) -> impl IntoView {
    let summary = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if message.get().is_some() {
            if let Some(element) = summary.get() {
                let _ = element.focus();
            }
        }
    });
    move || {
        message.get().map(|text| {
            let href = format!("#{field}");
            view! {
                <div class="nhsuk-error-summary" aria-labelledby="error-summary-title" role="alert" tabindex="-1" node_ref=summary>
                    <h2 class="nhsuk-error-summary__title" id="error-summary-title">"There is a problem"</h2>
                    <div class="nhsuk-error-summary__body">
                        <ul class="nhsuk-list nhsuk-error-summary__list">
                            <li><a href=href data-testid="error-message">{text}</a></li>
                        </ul>
                    </div>
                </div>
            }
        })
    }
}

/// Moves a wizard to its `next` step without the last step's error. (Done at the transition, not
/// in an effect, so an error set for the new step right after — "start again" — stays.)
pub fn go_to<S: Send + Sync + 'static>(step: RwSignal<S>, error: RwSignal<Option<String>>, next: S) {
    error.set(None);
    step.set(next);
}

#[component]
pub fn WarningCallout(#[prop(into)] title: String, children: Children) -> impl IntoView {
    view! {
        <div class="nhsuk-warning-callout">
            <h3 class="nhsuk-warning-callout__label">
                <span role="text"><span class="nhsuk-u-visually-hidden">"Important: "</span>{title}</span>
            </h3>
            {children()}
        </div>
    }
}

#[component]
pub fn InsetText(children: Children) -> impl IntoView {
    view! {
        <div class="nhsuk-inset-text">
            <span class="nhsuk-u-visually-hidden">"Information: "</span>
            {children()}
        </div>
    }
}
