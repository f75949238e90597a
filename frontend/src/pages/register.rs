//! The registration wizard (DESIGN.md): passcode → 4 questions → email → emailed code. Each step
//! is one question to the person, with its own error summary.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;
use protocol::error_code::ErrorCode;
use protocol::{
    agent::PinPurpose,
    api::{ProofRequest, Question, QuestionAnswer, RegistrationPending, RegistrationRequest},
};

use crate::{
    agent::use_agent,
    api,
    card_status::{CardStatus, CardWatch},
    components::{go_to, group_class, input_class, ErrorSummary, FieldError, InsetText},
    time,
};

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Passcode,
    Questions,
    Email,
    Code(RegistrationPending),
}

const SLOTS: usize = 4;

#[component]
pub fn Register() -> impl IntoView {
    let step = RwSignal::new(Step::Passcode);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let chosen: [RwSignal<Option<u32>>; SLOTS] = std::array::from_fn(|_| RwSignal::new(None));
    let answers: [RwSignal<String>; SLOTS] = std::array::from_fn(|_| RwSignal::new(String::new()));
    let email = RwSignal::new(String::new());
    let catalogue = LocalResource::new(api::questions);
    let me = LocalResource::new(api::me);
    let navigate = use_navigate();
    {
        let navigate = navigate.clone();
        Effect::new(move |_| match me.get() {
            Some(Err(e)) if e.is_unauthenticated() => navigate("/sign-in", Default::default()),
            Some(Ok(profile)) if email.get_untracked().is_empty() => {
                email.set(profile.contact_email.unwrap_or_default());
            }
            _ => {}
        });
    }

    view! {
        <h1>"Register for self-service"</h1>
        {move || match step.get() {
            Step::Passcode => view! { <PasscodeStep step error busy /> }.into_any(),
            Step::Questions => {
                let catalogue = catalogue.get().and_then(Result::ok).unwrap_or_default();
                view! { <QuestionsStep step error catalogue chosen answers /> }.into_any()
            }
            Step::Email => view! { <EmailStep step error busy chosen answers email /> }.into_any(),
            Step::Code(pending) => {
                let navigate = navigate.clone();
                view! { <CodeStep pending error busy on_done=move || navigate("/profile?registered=1", Default::default()) /> }.into_any()
            }
        }}
    }
}

#[component]
fn PasscodeStep(
    step: RwSignal<Step>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
) -> impl IntoView {
    let agent = use_agent();
    let watch = CardWatch::new(&agent);
    let passcode = RwSignal::new(String::new());
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let Some((reader, card)) = watch.identified() else {
            error.set(Some(
                "Put your smartcard in the card reader, and choose it if there are several.".into(),
            ));
            return;
        };
        let pin = passcode.get_untracked();
        passcode.set(String::new());
        busy.set(true);
        let agent = agent.clone();
        leptos::task::spawn_local(async move {
            let result = async {
                let issued = api::registration_challenge().await.map_err(|e| e.to_string())?;
                let signature = agent
                    .sign_with_pin(reader, card.guid, pin, issued.challenge, PinPurpose::RegistrationProof)
                    .await
                    .map_err(|e| e.message)?;
                api::registration_proof(&ProofRequest { challenge_id: issued.challenge_id, signature })
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            busy.set(false);
            match result {
                Ok(()) => go_to(step, error, Step::Questions),
                Err(message) => error.set(Some(message)),
            }
        });
    };
    view! {
        <span class="nhsuk-caption-l">"Step 1 of 4"</span>
        <h2>"Confirm it is your card"</h2>
        <ErrorSummary message=error.into() field="reg-passcode" />
        <p>"Enter your smartcard passcode. This shows that the card in the reader is yours."</p>
        <CardStatus watch card=|card| {
            let text = card.holder.as_deref().map_or_else(|| "Card found.".to_owned(), |name| format!("Card found ({name})."));
            view! { <p data-testid="card-ready">{text}</p> }.into_any()
        } />
        <form novalidate on:submit=on_submit>
            <div class=group_class(error)>
                <label class="nhsuk-label" for="reg-passcode">"Smartcard passcode"</label>
                <FieldError error />
                <input class=input_class("nhsuk-input nhsuk-input--width-10", error) id="reg-passcode" type="password" inputmode="numeric"
                    autocomplete="off" prop:value=move || passcode.get() on:input=move |ev| passcode.set(event_target_value(&ev)) />
            </div>
            <button class="nhsuk-button" type="submit" data-testid="continue" prop:disabled=move || busy.get()>"Continue"</button>
        </form>
    }
}

#[component]
fn QuestionsStep(
    step: RwSignal<Step>,
    error: RwSignal<Option<String>>,
    catalogue: Vec<Question>,
    chosen: [RwSignal<Option<u32>>; SLOTS],
    answers: [RwSignal<String>; SLOTS],
) -> impl IntoView {
    // Which question group the error is about, so that group is marked.
    let bad = RwSignal::new(None::<usize>);
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let ids: Vec<Option<u32>> = chosen.iter().map(|c| c.get_untracked()).collect();
        let short = |i: usize| answers[i].get_untracked().trim().chars().count() < 3;
        let problem = if let Some(i) = ids.iter().position(Option::is_none) {
            Some((i, "Choose a question for each of the 4 boxes."))
        } else if let Some(i) = (1..SLOTS).find(|&i| ids[..i].contains(&ids[i])) {
            Some((i, "Choose 4 different questions."))
        } else {
            (0..SLOTS).find(|&i| short(i)).map(|i| (i, "Each answer needs at least 3 characters."))
        };
        match problem {
            Some((i, message)) => {
                bad.set(Some(i));
                error.set(Some(message.into()));
            }
            None => {
                bad.set(None);
                go_to(step, error, Step::Email)
            }
        }
    };
    // An error from the server (after the email step) is about the questions as a whole.
    let marked = move |i: usize| error.get().is_some() && bad.get().is_none_or(|b| b == i);
    let slot_error = move |i: usize| Signal::derive(move || if marked(i) { error.get() } else { None });
    let slots = (0..SLOTS)
        .map(|i| {
            let options = catalogue
                .iter()
                .map(|q| {
                    let id = q.id;
                    view! { <option value=id.to_string() selected=move || chosen[i].get() == Some(id)>{q.text.clone()}</option> }
                })
                .collect_view();
            let select_id = format!("question-{}", i + 1);
            let answer_id = format!("answer-{}", i + 1);
            let message = slot_error(i);
            view! {
                <div class=move || if marked(i) { "nhsuk-form-group nhsuk-form-group--error reg-question" } else { "nhsuk-form-group reg-question" }>
                <fieldset class="nhsuk-fieldset" data-testid="question-group">
                    <legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m">{format!("Question {} of {SLOTS}", i + 1)}</legend>
                    {move || message.get().map(|text| view! {
                        <span class="nhsuk-error-message" data-testid="field-error"><span class="nhsuk-u-visually-hidden">"Error: "</span>{text}</span>
                    })}
                    <label class="nhsuk-label" for=select_id.clone()>"Choose a question"</label>
                    <select class="nhsuk-select" id=select_id
                        on:change=move |ev| chosen[i].set(event_target_value(&ev).parse().ok())>
                        <option value="" selected=move || chosen[i].get().is_none()>"Choose a question"</option>
                        {options}
                    </select>
                    <label class="nhsuk-label" for=answer_id.clone()>"Your answer"</label>
                    <input class="nhsuk-input" id=answer_id type="text" autocomplete="off" spellcheck="false"
                        prop:value=move || answers[i].get() on:input=move |ev| answers[i].set(event_target_value(&ev)) />
                </fieldset>
                </div>
            }
        })
        .collect_view();
    view! {
        <span class="nhsuk-caption-l">"Step 2 of 4"</span>
        <h2>"Choose 4 security questions"</h2>
        <ErrorSummary message=error.into() field=move || format!("question-{}", bad.get().unwrap_or(0) + 1) />
        <p>"You will answer some of these to unlock your card. Choose answers you will remember; capitals and extra spaces do not matter."</p>
        <form novalidate on:submit=on_submit>
            {slots}
            <button class="nhsuk-button" type="submit" data-testid="continue">"Continue"</button>
        </form>
    }
}

#[component]
fn EmailStep(
    step: RwSignal<Step>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    chosen: [RwSignal<Option<u32>>; SLOTS],
    answers: [RwSignal<String>; SLOTS],
    email: RwSignal<String>,
) -> impl IntoView {
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let request = RegistrationRequest {
            answers: (0..SLOTS)
                .map(|i| QuestionAnswer {
                    question_id: chosen[i].get_untracked().unwrap_or_default(),
                    answer: answers[i].get_untracked(),
                })
                .collect(),
            email: email.get_untracked(),
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = api::register(&request).await;
            busy.set(false);
            match result {
                Ok(pending) => go_to(step, error, Step::Code(pending)),
                Err(e) if e.code() == Some(ErrorCode::InvalidAnswers) => {
                    go_to(step, error, Step::Questions);
                    error.set(Some(e.to_string()));
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <span class="nhsuk-caption-l">"Step 3 of 4"</span>
        <h2>"Confirm your email address"</h2>
        <ErrorSummary message=error.into() field="email" />
        <form novalidate on:submit=on_submit>
            <div class=group_class(error)>
                <label class="nhsuk-label" for="email">"Email address"</label>
                <div class="nhsuk-hint" id="email-hint">"We will send a registration code here, and your unlock codes later. It is filled in from your contact details; you can change it."</div>
                <FieldError error />
                <input class=input_class("nhsuk-input", error) id="email" type="email" autocomplete="email" spellcheck="false" aria-describedby="email-hint"
                    prop:value=move || email.get() on:input=move |ev| email.set(event_target_value(&ev)) />
            </div>
            <button class="nhsuk-button" type="submit" data-testid="continue" prop:disabled=move || busy.get()>"Send the code"</button>
        </form>
    }
}

#[component]
fn CodeStep(
    pending: RegistrationPending,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    on_done: impl Fn() + Clone + 'static,
) -> impl IntoView {
    let code = RwSignal::new(String::new());
    let notice = RwSignal::new(None::<String>);
    let sent_line = time::code_sent(
        "a registration code",
        &pending.email,
        pending.sent_at,
        pending.code_expires_at,
        pending.earlier,
        pending.mail_delayed,
    );
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let typed = code.get_untracked();
        busy.set(true);
        let on_done = on_done.clone();
        leptos::task::spawn_local(async move {
            let result = api::confirm_registration(&typed).await;
            busy.set(false);
            match result {
                Ok(_) => on_done(),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let resend = move |_| {
        leptos::task::spawn_local(async move {
            match api::resend_registration_code().await {
                Ok(pending) => notice.set(Some(time::resent(&pending.email, pending.mail_delayed))),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <span class="nhsuk-caption-l">"Step 4 of 4"</span>
        <h2>"Enter the code we emailed you"</h2>
        <ErrorSummary message=error.into() field="code" />
        <InsetText>
            <p data-testid="code-sent">{sent_line}</p>
        </InsetText>
        {move || notice.get().map(|text| view! { <p role="status">{text}</p> })}
        <form novalidate on:submit=on_submit>
            <div class=group_class(error)>
                <label class="nhsuk-label" for="code">"Registration code"</label>
                <FieldError error />
                <input class=input_class("nhsuk-input nhsuk-input--width-10", error) id="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                    prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
            </div>
            <button class="nhsuk-button" type="submit" data-testid="confirm" prop:disabled=move || busy.get()>"Complete registration"</button>
        </form>
        <button class="nhsuk-button nhsuk-button--secondary" type="button" on:click=resend>"Send a new code"</button>
    }
}
