//! The virtual card made like other makers' cards: each quirk, seen in raw APDUs, and the robust
//! host (`piv::host`) working through it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

mod common;

use common::{pin, raw};

use piv::{
    host::{HostError, Metadata, PivSession},
    ids::{alg, key, object, PIV_AID},
    mgmt::ManagementKey,
};
use virtual_card::{
    card::Card,
    quirks::{Profile, Quirks},
    state::CardState,
};

fn card_with(quirks: Quirks, algorithm: u8) -> Card {
    let factory = ManagementKey::factory(algorithm).unwrap();
    let mut state = CardState::blank("123456", "12345678", algorithm, factory.key_bytes());
    state.quirks = quirks;
    Card::new(state, None)
}

fn select_apdu(aid: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
    apdu.extend_from_slice(aid);
    apdu.push(0x00);
    apdu
}

#[test]
fn a_full_aid_only_card_refuses_a_truncated_aid_and_the_host_still_selects_it() {
    let quirks = Quirks { full_aid_only: true, ..Quirks::default() };
    let mut card = card_with(quirks.clone(), alg::TDES);
    assert_eq!(raw(&mut card, &select_apdu(&PIV_AID[..5])).1, 0x6A82);
    assert_eq!(raw(&mut card, &select_apdu(&PIV_AID)).1, 0x9000);
    PivSession::new(card_with(quirks, alg::TDES)).select().unwrap();
}

#[test]
fn a_card_that_sends_data_only_through_get_response_is_read_in_full() {
    let quirks = Quirks { data_by_get_response: true, ..Quirks::default() };
    let mut card = card_with(quirks.clone(), alg::TDES);
    let (data, sw) = raw(&mut card, &select_apdu(&PIV_AID));
    assert!(data.is_empty() && sw >> 8 == 0x61, "{sw:04X}");
    let (template, sw) = raw(&mut card, &[0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8]);
    assert_eq!((template[0], sw), (0x61, 0x9000));
    let mut s = PivSession::new(card_with(quirks, alg::TDES));
    s.select().unwrap();
    assert!(s.get_data(object::DISCOVERY).unwrap().is_some());
    s.authenticate_management(&ManagementKey::default_3des()).unwrap();
    assert_eq!(s.generate_ec(key::PIV_AUTHENTICATION, alg::ECC_P256).unwrap().len(), 65);
}

#[test]
fn a_bare_6300_card_keeps_the_count_to_itself_and_still_counts() {
    let quirks = Quirks { bare_6300: true, ..Quirks::default() };
    let mut s = PivSession::new(card_with(quirks, alg::TDES));
    s.select().unwrap();
    let wrong = s.change_reference(key::PUK, &pin("00000000"), &pin("87654321"));
    assert_eq!(wrong, Err(HostError::WrongSecret { tries_left: None }));
    let wrong = s.reset_retry_counter(&pin("00000000"), &pin("13572468"));
    assert_eq!(wrong, Err(HostError::WrongSecret { tries_left: None }));
    assert_eq!(s.transport_mut().state().puk_tries_left, 1);
    // VERIFY still says how many PIN tries are left.
    assert_eq!(s.verify_pin(&pin("000000")), Err(HostError::WrongSecret { tries_left: Some(2) }));
}

#[test]
fn a_card_may_give_the_puk_five_tries_once_changed() {
    let quirks = Quirks { puk_tries_after_change: Some(5), ..Quirks::default() };
    let mut s = PivSession::new(card_with(quirks, alg::TDES));
    s.select().unwrap();
    s.change_reference(key::PUK, &pin("12345678"), &pin("87654321")).unwrap();
    let state = s.transport_mut().state();
    assert_eq!((state.puk_tries_max, state.puk_tries_left), (5, 5));
    let wrong = s.reset_retry_counter(&pin("00000000"), &pin("13572468"));
    assert_eq!(wrong, Err(HostError::WrongSecret { tries_left: Some(4) }));
}

#[test]
fn a_card_that_takes_only_3des_and_aes_256_refuses_the_others_as_real_ones_do() {
    let quirks = Quirks { mgmt_algorithms: vec![alg::TDES, alg::AES_256], ..Quirks::default() };
    let mut s = PivSession::new(card_with(quirks, alg::TDES));
    s.select().unwrap();
    // GENERAL AUTHENTICATE under AES-192: 6A86.
    let aes_192 = ManagementKey::factory(alg::AES_192).unwrap();
    assert!(
        matches!(s.authenticate_management(&aes_192), Err(HostError::Status { sw, .. }) if u16::from(sw) == 0x6A86)
    );
    s.authenticate_management(&ManagementKey::default_3des()).unwrap();
    // SET MANAGEMENT KEY to AES-192: 6A80, and the key stays.
    let refused = s.set_management_key(&ManagementKey::new(alg::AES_192, &[0x5A; 24]).unwrap());
    assert!(matches!(refused, Err(HostError::Status { sw, .. }) if u16::from(sw) == 0x6A80));
    assert_eq!(s.transport_mut().state().mgmt_algorithm, alg::TDES);
    let aes_256 = ManagementKey::new(alg::AES_256, &[0x5A; 32]).unwrap();
    s.set_management_key(&aes_256).unwrap();
    s.authenticate_management(&aes_256).unwrap();
}

#[test]
fn metadata_says_the_algorithm_and_what_is_still_a_factory_value() {
    let quirks = Quirks { metadata: true, ..Quirks::default() };
    let mut s = PivSession::new(card_with(quirks, alg::AES_192));
    s.select().unwrap();
    let mgmt = s.metadata(key::CARD_MANAGEMENT).unwrap();
    assert_eq!(mgmt, Some(Metadata { algorithm: Some(alg::AES_192), is_default: Some(true), tries: None }));
    let puk = s.metadata(key::PUK).unwrap().unwrap();
    assert_eq!((puk.algorithm, puk.is_default, puk.tries), (None, Some(true), Some((3, 3))));
    s.change_reference(key::PUK, &pin("12345678"), &pin("87654321")).unwrap();
    assert_eq!(s.metadata(key::PUK).unwrap().unwrap().is_default, Some(false));
    s.authenticate_management(&ManagementKey::factory(alg::AES_192).unwrap()).unwrap();
    s.set_management_key(&ManagementKey::new(alg::AES_192, &[0x5A; 24]).unwrap()).unwrap();
    assert_eq!(s.metadata(key::CARD_MANAGEMENT).unwrap().unwrap().is_default, Some(false));
    assert_eq!(s.metadata(key::PIV_AUTHENTICATION).unwrap(), None, "no key in 9A yet");
    // A card without the command: nothing to say, and no error.
    let mut plain = PivSession::new(card_with(Quirks::default(), alg::TDES));
    plain.select().unwrap();
    assert_eq!(plain.metadata(key::CARD_MANAGEMENT).unwrap(), None);
}

#[test]
fn every_profile_takes_its_own_factory_key() {
    for profile in Profile::ALL {
        let mut s = PivSession::new(card_with(profile.quirks(), profile.factory_algorithm()));
        s.select().unwrap();
        s.authenticate_management(&ManagementKey::factory(profile.factory_algorithm()).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", profile.name()));
    }
}
