//! Pieces of the NHS design system, as components.

use leptos::prelude::*;

/// "There is a problem" at the top of a form, focused when it appears so screen readers say it.
#[component]
pub fn ErrorSummary(message: Signal<Option<String>>, #[prop(into)] field: Signal<String>) -> impl IntoView {
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
            let href = format!("#{}", field.get());
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

/// The message beside a field in error, which the summary links to (NHS design system).
#[component]
pub fn FieldError(error: RwSignal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|text| {
            view! {
                <span class="nhsuk-error-message" data-testid="field-error">
                    <span class="nhsuk-u-visually-hidden">"Error: "</span>{text}
                </span>
            }
        })
    }
}

/// A form group's class: red-bordered while `error` is set.
pub fn group_class(error: RwSignal<Option<String>>) -> impl Fn() -> &'static str + Copy {
    move || {
        if error.get().is_some() {
            "nhsuk-form-group nhsuk-form-group--error"
        } else {
            "nhsuk-form-group"
        }
    }
}

/// An input's class (`base` plus the error modifier while `error` is set).
pub fn input_class(base: &'static str, error: RwSignal<Option<String>>) -> impl Fn() -> String + Copy {
    move || if error.get().is_some() { format!("{base} nhsuk-input--error") } else { base.to_owned() }
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
        // An h2, not the design system's h3: a callout straight under a page's h1 must not skip
        // a heading level.
        <div class="nhsuk-warning-callout">
            <h2 class="nhsuk-warning-callout__label">
                <span role="text"><span class="nhsuk-u-visually-hidden">"Important: "</span>{title}</span>
            </h2>
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
