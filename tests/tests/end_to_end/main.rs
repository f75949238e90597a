//! The end-to-end tests, one binary: each module was a test binary of its own, and every one of
//! them linked the whole backend, which cost a link of minutes per file in CI. Tests that share
//! the one virtual reader (or pcscd) take `tests::smartcard::exclusive` for their whole run.

mod agent_package;
mod card_agent;
mod clock_skew;
mod crash_issuance;
mod crash_unlock;
mod desk_unlock;
mod issue_card_cli;
mod journey_ra;
mod journey_register;
mod journey_unlock;
mod mail_delayed_page;
mod makers_cards;
mod sign_in_with_card;
mod smoke;
mod tray;
mod two_cards_at_a_desk;
mod unlock_card_cli;
mod unlock_recovery;
mod virtual_card_tools;
mod windows_agent;
