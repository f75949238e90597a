//! The virtual card in-process: every command and the status word a real card gives.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

mod common;

use common::{pin, raw};

use piv::{
    apdu::Command,
    host::{HostError, PinStatus, PivSession},
    ids::{alg, ins, key, object},
    mgmt::ManagementKey,
    status::StatusWord,
    tlv,
};
use virtual_card::{
    card::{atr, Card},
    personalise::{self, CertificateAuthority},
    state::CardState,
};

fn blank() -> Card {
    Card::new(CardState::blank("123456", "12345678", alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY), None)
}

fn selected() -> PivSession<Card> {
    let mut session = PivSession::new(blank());
    session.select().unwrap();
    session
}

#[test]
fn select_accepts_the_full_and_truncated_aid_and_answers_the_property_template() {
    for aid_len in [11usize, 9, 5] {
        let mut card = blank();
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, aid_len as u8];
        apdu.extend_from_slice(&piv::ids::PIV_AID[..aid_len]);
        apdu.push(0x00);
        let (data, sw) = raw(&mut card, &apdu);
        assert_eq!(sw, 0x9000, "AID of {aid_len} bytes");
        let (template, _) = tlv::parse_one(&data).unwrap();
        assert_eq!(template.tag, 0x61);
        assert_eq!(tlv::find(template.value, 0x4F).unwrap().unwrap(), &piv::ids::PIV_AID[5..]);
    }
    let mut card = blank();
    assert_eq!(raw(&mut card, &[0x00, 0xA4, 0x04, 0x00, 0x04, 0xA0, 0x00, 0x00, 0x03]).1, 0x6A82);
    assert_eq!(raw(&mut card, &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x05, 0x27]).1, 0x6A82);
}

#[test]
fn commands_before_select_and_unknown_instructions_are_refused() {
    let mut card = blank();
    assert_eq!(raw(&mut card, &[0x00, 0x20, 0x00, 0x80]).1, 0x6D00);
    let mut session = PivSession::new(card);
    session.select().unwrap();
    let mut card = session.into_inner();
    assert_eq!(raw(&mut card, &[0x00, 0x99, 0x00, 0x00]).1, 0x6D00);
    assert_eq!(raw(&mut card, &[0x80, 0x20, 0x00, 0x80]).1, 0x6E00);
    assert_eq!(raw(&mut card, &[0x00, 0x20, 0x00]).1, 0x6700);
    assert_eq!(raw(&mut card, &[0x00, 0x20, 0x00, 0x80, 0x05, 1, 2]).1, 0x6700);
}

#[test]
fn a_failed_select_of_another_applet_keeps_piv_selected() {
    let mut session = selected();
    let card = session.transport_mut();
    assert_eq!(
        raw(card, &[0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01]).1,
        0x6A82
    );
    assert_eq!(session.pin_status().unwrap(), PinStatus::TriesLeft(Some(3)));
}

#[test]
fn verify_counts_down_blocks_and_a_right_pin_restores_the_counter() {
    let mut s = selected();
    assert_eq!(s.pin_status().unwrap(), PinStatus::TriesLeft(Some(3)));
    assert_eq!(s.verify_pin(&pin("000000")), Err(HostError::WrongSecret { tries_left: Some(2) }));
    s.verify_pin(&pin("123456")).unwrap();
    assert_eq!(s.pin_status().unwrap(), PinStatus::Verified);
    s.logout().unwrap();
    assert_eq!(s.pin_status().unwrap(), PinStatus::TriesLeft(Some(3)), "P1=FF logs out; counter restored");
    for left in [2u8, 1] {
        assert_eq!(s.verify_pin(&pin("000000")), Err(HostError::WrongSecret { tries_left: Some(left) }));
    }
    // The third wrong PIN answers 63C0, which the host reads as blocked.
    assert_eq!(s.verify_pin(&pin("000000")), Err(HostError::Blocked));
    assert_eq!(s.verify_pin(&pin("123456")), Err(HostError::Blocked), "blocked even for the right PIN");
    assert_eq!(s.pin_status().unwrap(), PinStatus::Blocked);
    let card = s.transport_mut();
    assert_eq!(raw(card, &[0x00, 0x20, 0x00, 0x80]).1, 0x6983);
}

#[test]
fn malformed_pin_blocks_are_refused_without_spending_a_try() {
    let mut s = selected();
    let card = s.transport_mut();
    assert_eq!(
        raw(card, &[0x00, 0x20, 0x00, 0x80, 0x08, 0x31, 0xFF, 0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).1,
        0x6A80
    );
    assert_eq!(raw(card, &[0x00, 0x20, 0x00, 0x80, 0x04, 0x31, 0x32, 0x33, 0x34]).1, 0x6700);
    assert_eq!(
        raw(card, &[0x00, 0x20, 0x00, 0x81, 0x08, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38]).1,
        0x6A88
    );
    assert_eq!(s.pin_status().unwrap(), PinStatus::TriesLeft(Some(3)));
}

#[test]
fn change_pin_and_puk_need_the_old_value_and_spend_tries_when_wrong() {
    let mut s = selected();
    assert_eq!(
        s.change_reference(key::PIN, &pin("111111"), &pin("24681357")),
        Err(HostError::WrongSecret { tries_left: Some(2) })
    );
    s.change_reference(key::PIN, &pin("123456"), &pin("24681357")).unwrap();
    s.verify_pin(&pin("24681357")).unwrap();
    assert_eq!(
        s.change_reference(key::PUK, &pin("00000000"), &pin("87654321")),
        Err(HostError::WrongSecret { tries_left: Some(2) })
    );
    s.change_reference(key::PUK, &pin("12345678"), &pin("87654321")).unwrap();
    assert_eq!(s.transport_mut().state().puk, "87654321");
    assert_eq!(s.transport_mut().state().puk_tries_left, 3);
}

#[test]
fn reset_retry_counter_unblocks_with_the_puk_and_a_wrong_puk_counts_down_to_blocked() {
    let mut s = selected();
    for _ in 0..3 {
        let _ = s.verify_pin(&pin("000000"));
    }
    assert_eq!(s.pin_status().unwrap(), PinStatus::Blocked);
    assert_eq!(
        s.reset_retry_counter(&pin("00000000"), &pin("13572468")),
        Err(HostError::WrongSecret { tries_left: Some(2) })
    );
    s.reset_retry_counter(&pin("12345678"), &pin("13572468")).unwrap();
    assert_eq!(s.pin_status().unwrap(), PinStatus::TriesLeft(Some(3)));
    s.verify_pin(&pin("13572468")).unwrap();
    // Burn the PUK: three wrong tries block it for good.
    for _ in 0..3 {
        let _ = s.reset_retry_counter(&pin("00000000"), &pin("13572468"));
    }
    assert_eq!(s.reset_retry_counter(&pin("12345678"), &pin("13572468")), Err(HostError::Blocked));
}

#[test]
fn a_trivially_malformed_new_pin_is_6a80_before_the_puk_is_checked() {
    let mut s = selected();
    let mut data = b"00000000".to_vec();
    data.extend_from_slice(b"12\xFF\xFF\xFF\xFF\xFF\xFF");
    let command = Command::without_le(0x00, ins::RESET_RETRY_COUNTER, 0x00, 0x80, data);
    assert_eq!(s.transceive(&command).unwrap().sw, StatusWord::IncorrectData);
    assert_eq!(s.transport_mut().state().puk_tries_left, 3, "no PUK try spent on a malformed request");
}

#[test]
fn management_key_mutual_authentication_for_3des_and_each_aes_size() {
    for (algorithm, len) in [(alg::TDES, 24), (alg::AES_128, 16), (alg::AES_192, 24), (alg::AES_256, 32)] {
        let key_bytes = vec![0x42; len];
        let card = Card::new(CardState::blank("123456", "12345678", algorithm, &key_bytes), None);
        let mut s = PivSession::new(card);
        s.select().unwrap();
        s.authenticate_management(&ManagementKey::new(algorithm, &key_bytes).unwrap()).unwrap();
        // 0x44, not 0x43: DES ignores the parity bit, so 0x42 and 0x43 are the same 3DES key.
        let wrong = ManagementKey::new(algorithm, &vec![0x44; len]).unwrap();
        assert_eq!(s.authenticate_management(&wrong), Err(HostError::ManagementKeyRejected));
    }
}

#[test]
fn set_management_key_needs_the_current_key_and_replaces_it() {
    let mut s = selected();
    let aes = ManagementKey::new(alg::AES_192, &[0x5A; 24]).unwrap();
    assert_eq!(s.set_management_key(&aes), Err(HostError::SecurityNotSatisfied));
    s.authenticate_management(&ManagementKey::default_3des()).unwrap();
    s.set_management_key(&aes).unwrap();
    // The change ends the old key's authentication, and the old key no longer opens the card.
    assert_eq!(s.put_data(object::CHUID, b"x"), Err(HostError::SecurityNotSatisfied));
    assert!(s.authenticate_management(&ManagementKey::default_3des()).is_err());
    s.authenticate_management(&aes).unwrap();
    assert_eq!(s.transport_mut().state().mgmt_algorithm, alg::AES_192);
    // A key of the wrong length for its algorithm is refused and changes nothing.
    let r = s
        .transceive(&Command::without_le(
            0x00,
            ins::YK_SET_MANAGEMENT_KEY,
            0xFF,
            0xFF,
            vec![alg::AES_128, key::CARD_MANAGEMENT, 3, 1, 2, 3],
        ))
        .unwrap();
    assert_eq!(r.sw, StatusWord::IncorrectData);
    s.authenticate_management(&aes).unwrap();
}

#[test]
fn management_key_external_authentication() {
    let mgmt = ManagementKey::default_3des();
    let mut s = selected();
    let ask = tlv::encode(0x7C, &tlv::encode(0x81, &[]));
    let r = s
        .transceive(&Command::new(0x00, ins::GENERAL_AUTHENTICATE, alg::TDES, key::CARD_MANAGEMENT, ask))
        .unwrap();
    let (dynamic, _) = tlv::parse_one(&r.data).unwrap();
    let challenge = tlv::find(dynamic.value, 0x81).unwrap().unwrap().to_vec();
    let answer = tlv::encode(0x7C, &tlv::encode(0x82, &mgmt.encrypt_block(&challenge).unwrap()));
    let r = s
        .transceive(&Command::new(0x00, ins::GENERAL_AUTHENTICATE, alg::TDES, key::CARD_MANAGEMENT, answer))
        .unwrap();
    assert_eq!(r.sw, StatusWord::Success);
    s.generate_ec(key::PIV_AUTHENTICATION, alg::ECC_P256).unwrap();
}

#[test]
fn wrong_algorithm_for_the_management_key_is_6a86() {
    let mut s = selected();
    let ask = tlv::encode(0x7C, &tlv::encode(0x80, &[]));
    let r = s
        .transceive(&Command::new(0x00, ins::GENERAL_AUTHENTICATE, alg::AES_128, key::CARD_MANAGEMENT, ask))
        .unwrap();
    assert_eq!(r.sw, StatusWord::IncorrectP1P2);
}

#[test]
fn generate_and_put_data_need_the_management_key() {
    let mut s = selected();
    assert_eq!(s.generate_ec(key::PIV_AUTHENTICATION, alg::ECC_P256), Err(HostError::SecurityNotSatisfied));
    assert_eq!(s.put_data(object::CHUID, b"x"), Err(HostError::SecurityNotSatisfied));
    s.authenticate_management(&ManagementKey::default_3des()).unwrap();
    assert_eq!(s.generate_ec(key::PIV_AUTHENTICATION, alg::ECC_P256).unwrap().len(), 65);
    assert_eq!(s.generate_ec(key::KEY_MANAGEMENT, alg::ECC_P384).unwrap().len(), 97);
    assert!(matches!(
        s.generate_ec(key::PIV_AUTHENTICATION, alg::RSA_2048),
        Err(HostError::Status { sw: StatusWord::IncorrectData, .. })
    ));
    assert!(matches!(
        s.generate_ec(key::CARD_MANAGEMENT, alg::ECC_P256),
        Err(HostError::Status { sw: StatusWord::IncorrectP1P2, .. })
    ));
}

#[test]
fn signing_rules_per_slot() {
    let mut s = selected();
    s.authenticate_management(&ManagementKey::default_3des()).unwrap();
    let p9a = s.generate_ec(key::PIV_AUTHENTICATION, alg::ECC_P256).unwrap();
    s.generate_ec(key::CARD_AUTHENTICATION, alg::ECC_P256).unwrap();
    s.generate_ec(key::DIGITAL_SIGNATURE, alg::ECC_P256).unwrap();
    let digest = [7u8; 32];

    // 9E: no PIN needed (proof of card presence).
    s.sign_ec(key::CARD_AUTHENTICATION, alg::ECC_P256, &digest).unwrap();
    // 9A: only after VERIFY.
    assert_eq!(
        s.sign_ec(key::PIV_AUTHENTICATION, alg::ECC_P256, &digest),
        Err(HostError::SecurityNotSatisfied)
    );
    s.verify_pin(&pin("123456")).unwrap();
    let der = s.sign_ec(key::PIV_AUTHENTICATION, alg::ECC_P256, &digest).unwrap();
    use ecdsa::signature::hazmat::PrehashVerifier;
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&p9a).unwrap();
    public.verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&der).unwrap()).unwrap();
    s.sign_ec(key::PIV_AUTHENTICATION, alg::ECC_P256, &digest).unwrap();
    // 9C: only right after VERIFY, once.
    s.verify_pin(&pin("123456")).unwrap();
    s.sign_ec(key::DIGITAL_SIGNATURE, alg::ECC_P256, &digest).unwrap();
    assert_eq!(
        s.sign_ec(key::DIGITAL_SIGNATURE, alg::ECC_P256, &digest),
        Err(HostError::SecurityNotSatisfied)
    );
    // Wrong digest length, wrong algorithm, empty slot.
    assert!(matches!(
        s.sign_ec(key::CARD_AUTHENTICATION, alg::ECC_P256, &[1; 20]),
        Err(HostError::Status { sw: StatusWord::IncorrectData, .. })
    ));
    assert!(matches!(
        s.sign_ec(key::CARD_AUTHENTICATION, alg::ECC_P384, &[1; 48]),
        Err(HostError::Status { sw: StatusWord::IncorrectP1P2, .. })
    ));
    assert!(matches!(
        s.sign_ec(key::KEY_MANAGEMENT, alg::ECC_P256, &digest),
        Err(HostError::Status { sw: StatusWord::ReferenceNotFound, .. })
    ));
}

#[test]
fn a_reset_forgets_the_selection_and_the_verified_pin() {
    let mut s = selected();
    s.verify_pin(&pin("123456")).unwrap();
    s.transport_mut().reset();
    assert_eq!(raw(s.transport_mut(), &[0x00, 0x20, 0x00, 0x80]).1, 0x6D00, "not selected after reset");
    s.select().unwrap();
    assert_eq!(s.pin_status().unwrap(), PinStatus::TriesLeft(Some(3)));
}

#[test]
fn long_objects_use_chaining_in_and_61xx_with_get_response_out() {
    let mut s = selected();
    s.authenticate_management(&ManagementKey::default_3des()).unwrap();
    let big: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
    s.put_data(object::CERT_PIV_AUTH, &big).unwrap();
    // The raw first answer is 256 bytes and 61xx.
    let card = s.transport_mut();
    let (first, sw) = raw(card, &[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x00]);
    assert_eq!(first.len(), 256);
    assert_eq!(sw & 0xFF00, 0x6100);
    // The host session follows GET RESPONSE to the end.
    assert_eq!(s.get_data(object::CERT_PIV_AUTH).unwrap().unwrap(), big);
    // An extended Le takes it all at once.
    let card = s.transport_mut();
    let (all, sw) =
        raw(card, &[0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x00, 0x00]);
    assert_eq!((sw, all.len()), (0x9000, big.len() + 4));
}

#[test]
fn get_data_rules() {
    let mut s = selected();
    assert_eq!(s.get_data(object::CHUID).unwrap(), None, "absent object is 6A82");
    assert!(s.get_data(object::DISCOVERY).unwrap().is_some());
    s.authenticate_management(&ManagementKey::default_3des()).unwrap();
    s.put_data(object::PRINTED_INFORMATION, b"printed").unwrap();
    assert_eq!(s.get_data(object::PRINTED_INFORMATION), Err(HostError::SecurityNotSatisfied));
    s.verify_pin(&pin("123456")).unwrap();
    assert_eq!(s.get_data(object::PRINTED_INFORMATION).unwrap().unwrap(), b"printed");
    let card = s.transport_mut();
    assert_eq!(raw(card, &[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC2, 0x00, 0x00]).1, 0x6A80);
    assert_eq!(raw(card, &[0x00, 0xCB, 0x3F, 0xFE, 0x03, 0x5C, 0x01, 0x7E, 0x00]).1, 0x6A86);
    assert_eq!(raw(card, &[0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x5C, 0x05, 0x7E, 0x00]).1, 0x6A80, "bad TLV");
}

#[test]
fn get_response_without_pending_data_is_refused() {
    let mut s = selected();
    assert_eq!(raw(s.transport_mut(), &[0x00, 0xC0, 0x00, 0x00, 0x00]).1, 0x6985);
}

#[test]
fn personalisation_goes_through_the_cards_commands_and_yields_verifiable_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
    let mut s = PivSession::new(blank());
    let done =
        personalise::personalise(&mut s, &ManagementKey::default_3des(), &ca, "Alice Example").unwrap();
    let chuid = s.get_data(object::CHUID).unwrap().unwrap();
    assert_eq!(personalise::guid_from_chuid(&chuid), Some(done.guid));
    let cert =
        personalise::certificate_from_object(&s.get_data(object::CERT_PIV_AUTH).unwrap().unwrap()).unwrap();
    assert_eq!(cert, done.piv_auth_certificate);
    assert!(s.get_data(object::CERT_CARD_AUTH).unwrap().is_some());
    // The same CA loads again from its folder.
    let again = CertificateAuthority::load_or_create(dir.path()).unwrap();
    assert_eq!(again.certificate(), ca.certificate());
}

#[test]
fn state_changes_are_saved_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let state = CardState::blank("123456", "12345678", alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY);
    state.save(&path).unwrap();
    let mut s = PivSession::new(Card::new(state, Some(path.clone())));
    s.select().unwrap();
    let _ = s.verify_pin(&pin("000000"));
    assert_eq!(CardState::load(&path).unwrap().pin_tries_left, 2, "a crash now cannot refund the try");
}

#[test]
fn the_atr_has_a_valid_check_byte() {
    let atr = atr();
    assert_eq!(atr[0], 0x3B);
    assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
}

#[test]
fn attest_certifies_a_generated_key_under_the_makers_chain() {
    let dir = tempfile::tempdir().unwrap();
    let maker = CertificateAuthority::load_or_create_maker(dir.path()).unwrap();
    let mut state = CardState::blank("123456", "12345678", alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY);
    state.provision_attestation(&maker).unwrap();
    let serial = state.serial;
    let mut s = PivSession::new(Card::new(state, None));
    s.select().unwrap();
    s.authenticate_management(&ManagementKey::default_3des()).unwrap();
    let point = s.generate_ec(key::PIV_AUTHENTICATION, alg::ECC_P256).unwrap();
    // Over 255 bytes: the answer comes in 61xx parts.
    let slot = s.attest(key::PIV_AUTHENTICATION).unwrap().unwrap();
    let device = s.get_data(object::ATTESTATION_CERTIFICATE).unwrap().unwrap();
    let device = tlv::find(&device, 0x70).unwrap().unwrap().to_vec();
    let attested =
        card_ca::attestation::verify(&[maker.certificate().clone()], &device, &slot, &point).unwrap();
    assert_eq!(attested.serial, Some(serial));
    // No key in the slot, or a card made without attestation (as many PIV cards are).
    assert_eq!(
        s.attest(key::CARD_AUTHENTICATION),
        Err(HostError::Status { ins: ins::YK_ATTEST, sw: StatusWord::ReferenceNotFound })
    );
    let mut plain = selected();
    plain.authenticate_management(&ManagementKey::default_3des()).unwrap();
    plain.generate_ec(key::PIV_AUTHENTICATION, alg::ECC_P256).unwrap();
    assert_eq!(plain.attest(key::PIV_AUTHENTICATION), Ok(None));
}
