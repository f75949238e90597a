//! The virtual card through the real PC/SC stack (pcscd + vpcd), driven by independent PIV tools:
//! OpenSC (`opensc-tool`, `pkcs15-tool`, `pkcs11-tool`), `yubico-piv-tool` and `openssl`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

use std::process::Command;

use tests::smartcard::{exclusive, run, run_ok, yubico, CardFile, InsertedCard, READER};

const PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

#[test]
fn opensc_recognises_a_personalised_card_and_lists_its_certificates() -> anyhow::Result<()> {
    let _lock = exclusive()?;
    let card = CardFile::personalised("Alice Example")?;
    let _inserted = InsertedCard::insert(&card)?;

    let readers = run_ok(Command::new("opensc-tool").arg("-l"))?;
    assert!(readers.lines().any(|l| l.contains(READER) && l.contains("Yes")), "{readers}");
    let name = run_ok(Command::new("opensc-tool").arg("-n"))?;
    assert!(name.contains("Personal Identity Verification Card"), "{name}");

    let dump = run_ok(Command::new("pkcs15-tool").arg("-D"))?;
    assert!(dump.contains("PKCS#15 Card [Alice Example]"), "{dump}");
    assert!(dump.contains("PIV AUTH key") && dump.contains("CARD AUTH key"), "{dump}");
    let certificates = run_ok(Command::new("pkcs15-tool").arg("--list-certificates"))?;
    assert!(certificates.contains("Certificate for PIV Authentication"), "{certificates}");
    assert!(certificates.contains("Certificate for Card Authentication"), "{certificates}");
    let pem = run_ok(Command::new("pkcs15-tool").args(["--read-certificate", "01"]))?;
    let pem_path = card.dir.path().join("9a.pem");
    std::fs::write(&pem_path, pem)?;
    let subject =
        run_ok(Command::new("openssl").arg("x509").arg("-in").arg(&pem_path).args(["-noout", "-subject"]))?;
    assert!(subject.contains("CN = Alice Example"), "{subject}");
    Ok(())
}

#[test]
fn pkcs11_signs_with_the_9a_key_and_openssl_verifies_against_the_certificate() -> anyhow::Result<()> {
    let _lock = exclusive()?;
    let card = CardFile::personalised("Bob Example")?;
    let _inserted = InsertedCard::insert(&card)?;
    let dir = card.dir.path();
    std::fs::write(dir.join("data"), b"sign me, card")?;

    run_ok(
        Command::new("pkcs11-tool")
            .args(["--module", PKCS11, "--login", "--pin", "123456", "--sign", "--mechanism", "ECDSA-SHA256"])
            .args(["--id", "01", "--signature-format", "openssl"])
            .arg("-i")
            .arg(dir.join("data"))
            .arg("-o")
            .arg(dir.join("sig")),
    )?;
    let pem = run_ok(Command::new("pkcs15-tool").args(["--read-certificate", "01"]))?;
    std::fs::write(dir.join("cert.pem"), pem)?;
    run_ok(
        Command::new("openssl")
            .arg("x509")
            .arg("-in")
            .arg(dir.join("cert.pem"))
            .args(["-pubkey", "-noout", "-out"])
            .arg(dir.join("pub.pem")),
    )?;
    let verified = run_ok(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(dir.join("pub.pem"))
            .arg("-signature")
            .arg(dir.join("sig"))
            .arg(dir.join("data")),
    )?;
    assert!(verified.contains("Verified OK"), "{verified}");
    // The certificate chains to the demo CA the backend will be configured to trust.
    let chain = run_ok(
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(card.ca_dir.join("ca.cert.pem"))
            .arg(dir.join("cert.pem")),
    )?;
    assert!(chain.contains(": OK"), "{chain}");

    // A wrong PIN is refused by the card and costs a try.
    let (ok, out) = run(Command::new("pkcs11-tool")
        .args([
            "--module",
            PKCS11,
            "--login",
            "--pin",
            "999999",
            "--sign",
            "--mechanism",
            "ECDSA-SHA256",
            "--id",
            "01",
        ])
        .arg("-i")
        .arg(dir.join("data"))
        .arg("-o")
        .arg(dir.join("sig2")))?;
    assert!(!ok && out.contains("CKR_PIN_INCORRECT"), "{out}");
    Ok(())
}

#[test]
fn yubico_piv_tool_verifies_changes_blocks_and_unblocks_the_pin_and_changes_the_puk() -> anyhow::Result<()> {
    let _lock = exclusive()?;
    let card = CardFile::blank()?;
    let _inserted = InsertedCard::insert(&card)?;

    let (ok, out) = yubico(&["-a", "verify-pin", "-P", "123456"])?;
    assert!(ok && out.contains("Successfully verified PIN"), "{out}");
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", "654321"])?;
    assert!(!ok && out.contains("2 tries left"), "{out}");

    let (ok, out) = yubico(&["-a", "change-pin", "-P", "123456", "-N", "24681357"])?;
    assert!(ok && out.contains("Successfully changed the pin"), "{out}");
    let (ok, _) = yubico(&["-a", "verify-pin", "-P", "24681357"])?;
    assert!(ok, "the new PIN works");

    for _ in 0..3 {
        let _ = yubico(&["-a", "verify-pin", "-P", "000000"])?;
    }
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", "24681357"])?;
    assert!(!ok && out.contains("blocked"), "three wrong PINs block the card: {out}");

    let (ok, out) = yubico(&["-a", "unblock-pin", "-P", "12345678", "-N", "13572468"])?;
    assert!(ok && out.contains("Successfully unblocked"), "{out}");
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", "13572468"])?;
    assert!(ok, "usable again after unlock: {out}");

    let (ok, out) = yubico(&["-a", "change-puk", "-P", "12345678", "-N", "87654321"])?;
    assert!(ok && out.contains("Successfully changed the puk"), "{out}");
    let (ok, out) = yubico(&["-a", "unblock-pin", "-P", "12345678", "-N", "11223344"])?;
    assert!(!ok && out.contains("2 tries left"), "the old PUK no longer works: {out}");
    let (ok, out) = yubico(&["-a", "unblock-pin", "-P", "87654321", "-N", "11223344"])?;
    assert!(ok, "the new PUK does: {out}");

    // The state survived in the file: a re-inserted card still has the new PIN.
    drop(_inserted);
    let _again = InsertedCard::insert(&card)?;
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", "11223344"])?;
    assert!(ok, "state persisted across removal: {out}");
    Ok(())
}
