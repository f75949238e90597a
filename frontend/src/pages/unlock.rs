//! Unlock my card (DESIGN.md, journey 2): a public page where the card is the identity. The card
//! proves it is present (9E, no passcode), the holder answers their questions, enters the code we
//! emailed, and chooses a new passcode. The PUK travels sealed from the backend to the agent; this
//! page only relays the ciphertext, and the new passcode goes only to the agent.

use leptos::{ev::SubmitEvent, prelude::*};
use protocol::{
    agent::{CardIdentity, PinState},
    api::{QuestionAnswer, UnlockAnswers, UnlockCode, UnlockCodeSent, UnlockQuestions, UnlockStart},
    passcode,
};
use protocol::{card_guid::CardGuid, error_code::ErrorCode};

use crate::{
    agent::{use_agent, Agent},
    api::{self, ApiError},
    card_status::{CardStatus, CardWatch, ChosenCard},
    components::{go_to, group_class, input_class, ErrorSummary, FieldError, InsetText, WarningCallout},
    release, time,
};

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Start,
    Questions(UnlockQuestions),
    Code {
        attempt_id: String,
        sent: UnlockCodeSent,
    },
    NewPasscode {
        attempt_id: String,
    },
    Done,
    /// Self-service cannot help: why, and what to do instead.
    ContactRa {
        title: &'static str,
        message: String,
    },
}

/// Refusals that end self-service for this card become their own page; others stay on the step.
fn dead_end(error: &ApiError) -> Option<Step> {
    let title = match error.code()? {
        ErrorCode::LockedOut => "Self-service is locked for you",
        ErrorCode::NotRegistered => "You have not registered for self-service",
        ErrorCode::CardNotRecognised => "This card is not recognised",
        ErrorCode::CardNotActive => "This card cannot be used",
        ErrorCode::PukUnknown => "This card cannot be unlocked here",
        _ => return None,
    };
    Some(Step::ContactRa { title, message: error.to_string() })
}

#[component]
pub fn Unlock() -> impl IntoView {
    let step = RwSignal::new(Step::Start);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    view! {
        <h1>"Unlock your smartcard"</h1>
        {move || match step.get() {
            Step::Start => view! { <StartStep step error busy /> }.into_any(),
            Step::Questions(questions) => view! { <QuestionsStep step error busy questions /> }.into_any(),
            Step::Code { attempt_id, sent } => view! { <CodeStep step error busy attempt_id sent /> }.into_any(),
            Step::NewPasscode { attempt_id } => view! { <NewPasscodeStep step error busy attempt_id /> }.into_any(),
            Step::Done => view! {
                <div class="nhsuk-panel" data-testid="unlocked">
                    <h2 class="nhsuk-panel__title">"Your card is unlocked"</h2>
                    <div class="nhsuk-panel__body">"Use your new passcode from now on."</div>
                </div>
                <p>"We have emailed you to say your card was unlocked."</p>
                <a class="nhsuk-button" href="/sign-in" data-testid="sign-in-now">"Sign in now"</a>
            }.into_any(),
            Step::ContactRa { title, message } => view! {
                <WarningCallout title=title>
                    <p data-testid="contact-ra">{message}</p>
                </WarningCallout>
                <p>"Your Registration Authority (RA) can unlock your card in person. Take your card and photo ID."</p>
            }.into_any(),
        }}
    }
}

#[component]
fn StartStep(step: RwSignal<Step>, error: RwSignal<Option<String>>, busy: RwSignal<bool>) -> impl IntoView {
    let agent = use_agent();
    let watch = CardWatch::new(&agent);
    let chosen = expect_context::<ChosenCard>().0;
    let on_start = move |_| {
        let Some((reader, card)) = watch.identified() else {
            error.set(Some(if watch.cards.get_untracked().is_some_and(|c| c.len() > 1) {
                "Choose your card first.".into()
            } else {
                "Put your smartcard in the card reader.".into()
            }));
            return;
        };
        // The rest of the unlock is for this card (the agent refuses another at the release).
        chosen.set(Some((reader.clone(), Some(card.guid.clone()))));
        busy.set(true);
        let agent = agent.clone();
        leptos::task::spawn_local(async move {
            let result = start(&agent, reader, card.guid).await;
            busy.set(false);
            match result {
                Ok(UnlockQuestions { attempt_id, code_sent: Some(sent), .. }) => {
                    go_to(step, error, Step::Code { attempt_id, sent })
                }
                Ok(questions) => go_to(step, error, Step::Questions(questions)),
                Err(problem) => show(problem, step, error),
            }
        });
    };
    view! {
        <ErrorSummary message=error.into() field="start-unlock" />
        <p class="nhsuk-lede-text">"If your card is locked, or you have forgotten its passcode, you can set a new passcode here in a few minutes."</p>
        <WarningCallout title="Only unlock your own card">
            <p data-testid="misconduct">"Unlocking a card that is not yours is misconduct and could result in disciplinary action. Every unlock is recorded and the card's owner is emailed."</p>
        </WarningCallout>
        <h2>"What you need"</h2>
        <ul class="nhsuk-list nhsuk-list--bullet">
            <li>"Your smartcard in the card reader."</li>
            <li>"The answers to the security questions you chose when you registered."</li>
            <li>"Access to the email address you registered: we send you a code."</li>
        </ul>
        <CardStatus watch card=card_found />
        <button class="nhsuk-button" type="button" id="start-unlock" data-testid="start-unlock"
            prop:disabled=move || busy.get() on:click=on_start>"Start"</button>
    }
}

fn card_found(card: &CardIdentity) -> AnyView {
    let whose = card.holder.as_deref().map(|name| format!(" ({name})")).unwrap_or_default();
    let text = match card.pin {
        PinState::Blocked => format!("Card found{whose}. It is locked: too many wrong passcodes were entered."),
        PinState::Ready { tries_left: Some(n) } => format!(
            "Card found{whose}. It is not locked ({n} passcode tries left); you can still set a new passcode if you have forgotten it."
        ),
        PinState::Ready { tries_left: None } => format!("Card found{whose}. You can set a new passcode if you have forgotten it."),
    };
    view! { <InsetText><p data-testid="card-found">{text}</p></InsetText> }.into_any()
}

enum Problem {
    DeadEnd(Step),
    /// The attempt ended (expired, or used up): back to the start, saying so.
    Restart(String),
    Message(String),
}

impl From<ApiError> for Problem {
    fn from(error: ApiError) -> Self {
        match dead_end(&error) {
            Some(step) => Problem::DeadEnd(step),
            None if error.code() == Some(ErrorCode::AttemptExpired) => Problem::Restart(error.to_string()),
            None => Problem::Message(error.to_string()),
        }
    }
}

/// Shows a problem where it belongs: its own page, the start again, or this step's summary.
fn show(problem: Problem, step: RwSignal<Step>, error: RwSignal<Option<String>>) {
    match problem {
        Problem::DeadEnd(next) => go_to(step, error, next),
        Problem::Restart(message) => {
            go_to(step, error, Step::Start);
            error.set(Some(message));
        }
        Problem::Message(message) => error.set(Some(message)),
    }
}

async fn start(agent: &Agent, reader: String, guid: CardGuid) -> Result<UnlockQuestions, Problem> {
    let issued = api::unlock_challenge().await?;
    let signature =
        agent.prove_presence(reader, issued.challenge).await.map_err(|e| Problem::Message(e.message))?;
    Ok(api::unlock_start(&UnlockStart { challenge_id: issued.challenge_id, guid, signature }).await?)
}

#[component]
fn QuestionsStep(
    step: RwSignal<Step>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    questions: UnlockQuestions,
) -> impl IntoView {
    let answers: Vec<(u32, String, RwSignal<String>)> =
        questions.questions.iter().map(|q| (q.id, q.text.clone(), RwSignal::new(String::new()))).collect();
    // The one count on the page: from the start, then from each refusal.
    let left = RwSignal::new(questions.attempts_left);
    let attempt_id = questions.attempt_id.clone();
    let fields = answers
        .iter()
        .enumerate()
        .map(|(i, (_, text, answer))| {
            let answer = *answer;
            let id = format!("unlock-answer-{}", i + 1);
            view! {
                <div class=group_class(error)>
                    <label class="nhsuk-label" for=id.clone()>{text.clone()}</label>
                    {(i == 0).then(|| view! { <FieldError error /> })}
                    <input class=input_class("nhsuk-input", error) id=id type="text" autocomplete="off" spellcheck="false"
                        prop:value=move || answer.get() on:input=move |ev| answer.set(event_target_value(&ev)) />
                </div>
            }
        })
        .collect_view();
    let boxes: Vec<RwSignal<String>> = answers.iter().map(|(_, _, answer)| *answer).collect();
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let request = UnlockAnswers {
            attempt_id: attempt_id.clone(),
            answers: answers
                .iter()
                .map(|(id, _, answer)| QuestionAnswer { question_id: *id, answer: answer.get_untracked() })
                .collect(),
        };
        if request.answers.iter().any(|a| a.answer.trim().is_empty()) {
            error.set(Some("Answer every question.".into()));
            return;
        }
        busy.set(true);
        let boxes = boxes.clone();
        leptos::task::spawn_local(async move {
            let result = api::unlock_answers(&request).await;
            busy.set(false);
            match result {
                Ok(sent) => go_to(step, error, Step::Code { attempt_id: request.attempt_id, sent }),
                Err(e) if e.code() == Some(ErrorCode::AnswersWrong) => {
                    // Wrong answers are not left on the screen for the next person to read.
                    boxes.iter().for_each(|answer| answer.set(String::new()));
                    if let Some(n) = e.attempts_left() {
                        left.set(n);
                    }
                    error.set(Some("One or more answers are not right. Check them and try again.".into()));
                }
                Err(e) => show(e.into(), step, error),
            }
        });
    };
    view! {
        <span class="nhsuk-caption-l">"Step 1 of 3"</span>
        <h2>"Answer your security questions"</h2>
        <ErrorSummary message=error.into() field="unlock-answer-1" />
        <p>"Capitals and extra spaces do not matter."</p>
        <p data-testid="attempts-left">{move || {
            let left = left.get();
            format!(
                "You have {left} {} before self-service locks and you need to contact your Registration Authority (RA).",
                if left == 1 { "attempt" } else { "attempts" }
            )
        }}</p>
        <form novalidate on:submit=on_submit>
            {fields}
            <button class="nhsuk-button" type="submit" data-testid="continue" prop:disabled=move || busy.get()>"Continue"</button>
        </form>
    }
}

#[component]
fn CodeStep(
    step: RwSignal<Step>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    attempt_id: String,
    sent: UnlockCodeSent,
) -> impl IntoView {
    let code = RwSignal::new(String::new());
    let notice = RwSignal::new(None::<String>);
    let sent_line = time::code_sent(
        "an unlock code",
        &sent.email_hint,
        sent.sent_at,
        sent.code_expires_at,
        sent.earlier,
        sent.mail_delayed,
    );
    let on_submit = {
        let attempt_id = attempt_id.clone();
        move |event: SubmitEvent| {
            event.prevent_default();
            let request =
                UnlockCode { attempt_id: attempt_id.clone(), code: code.get_untracked().trim().to_owned() };
            busy.set(true);
            leptos::task::spawn_local(async move {
                let result = api::unlock_code(&request).await;
                busy.set(false);
                match result {
                    Ok(()) => go_to(step, error, Step::NewPasscode { attempt_id: request.attempt_id }),
                    Err(e) => show(e.into(), step, error),
                }
            });
        }
    };
    let resend = move |_| {
        let attempt_id = attempt_id.clone();
        leptos::task::spawn_local(async move {
            match api::unlock_resend(&attempt_id).await {
                Ok(sent) => notice.set(Some(format!(
                    "{} Use the newest one.",
                    time::resent(&sent.email_hint, sent.mail_delayed)
                ))),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <span class="nhsuk-caption-l">"Step 2 of 3"</span>
        <h2>"Check your email"</h2>
        <ErrorSummary message=error.into() field="unlock-code" />
        <InsetText>
            <p data-testid="code-sent">{sent_line}</p>
        </InsetText>
        <p><strong>"The unlock code is not your new passcode."</strong>" You choose your new passcode on the next page."</p>
        {move || notice.get().map(|text| view! { <p role="status">{text}</p> })}
        <form novalidate on:submit=on_submit>
            <div class=group_class(error)>
                <label class="nhsuk-label" for="unlock-code">"Unlock code"</label>
                <div class="nhsuk-hint" id="unlock-code-hint">"8 digits, from the email."</div>
                <FieldError error />
                <input class=input_class("nhsuk-input nhsuk-input--width-10", error) id="unlock-code" type="text" inputmode="numeric"
                    autocomplete="one-time-code" aria-describedby="unlock-code-hint"
                    prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
            </div>
            <button class="nhsuk-button" type="submit" data-testid="continue" prop:disabled=move || busy.get()>"Continue"</button>
        </form>
        <button class="nhsuk-button nhsuk-button--secondary" type="button" data-testid="resend" on:click=resend>"Send a new code"</button>
    }
}

#[component]
fn NewPasscodeStep(
    step: RwSignal<Step>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    attempt_id: String,
) -> impl IntoView {
    let agent = use_agent();
    let chosen = expect_context::<ChosenCard>().0;
    let new = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let (pin, again) = (new.get_untracked(), confirm.get_untracked());
        if let Err(problem) = passcode::check(&pin, &again) {
            // Passcodes are never shown back, not even masked: both boxes start again.
            new.set(String::new());
            confirm.set(String::new());
            error.set(Some(problem.message().into()));
            return;
        }
        let Some((reader, _)) = chosen.get_untracked() else {
            error.set(Some("Put your smartcard back in the card reader.".into()));
            return;
        };
        busy.set(true);
        let agent = agent.clone();
        let attempt_id = attempt_id.clone();
        leptos::task::spawn_local(async move {
            let result = release::unlock(&agent, release::SELF_SERVICE, reader, &attempt_id, pin)
                .await
                .map_err(|failed| match failed {
                    release::Failed::Api(e) => Problem::from(e),
                    release::Failed::Agent(message) => Problem::Message(message),
                });
            busy.set(false);
            new.set(String::new());
            confirm.set(String::new());
            match result {
                Ok(()) => go_to(step, error, Step::Done),
                Err(problem) => show(problem, step, error),
            }
        });
    };
    view! {
        <span class="nhsuk-caption-l">"Step 3 of 3"</span>
        <h2>"Choose a new passcode"</h2>
        <ErrorSummary message=error.into() field="new-passcode" />
        <p>"Keep your card in the reader. Your new passcode goes only to your card; this service never sees it."</p>
        <form novalidate on:submit=on_submit>
            <div class=group_class(error)>
                <label class="nhsuk-label" for="new-passcode">"New passcode"</label>
                <div class="nhsuk-hint" id="new-passcode-hint">"6 to 8 digits. Not one digit repeated, not a run like 123456, and not a common one."</div>
                <FieldError error />
                <input class=input_class("nhsuk-input nhsuk-input--width-10", error) id="new-passcode" type="password" inputmode="numeric"
                    autocomplete="new-password" aria-describedby="new-passcode-hint"
                    prop:value=move || new.get() on:input=move |ev| new.set(event_target_value(&ev)) />
            </div>
            <div class="nhsuk-form-group">
                <label class="nhsuk-label" for="confirm-passcode">"Enter the new passcode again"</label>
                <input class="nhsuk-input nhsuk-input--width-10" id="confirm-passcode" type="password" inputmode="numeric"
                    autocomplete="new-password"
                    prop:value=move || confirm.get() on:input=move |ev| confirm.set(event_target_value(&ev)) />
            </div>
            <button class="nhsuk-button" type="submit" data-testid="unlock" prop:disabled=move || busy.get()>"Unlock my card"</button>
        </form>
    }
}
