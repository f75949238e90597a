//! The vpcd protocol (vsmartcard): the card is the TCP client; each message either way is a
//! 2-byte big-endian length and that many bytes. A 1-byte message from vpcd is a control code
//! (`00` power off, `01` power on, `02` reset, `04` get ATR); anything longer is a command APDU.
//! Closing the connection is "card removed".

use std::{
    io::{self, Read, Write},
    net::TcpStream,
    time::Duration,
};

use piv::apdu::Command;

use crate::card::{atr, Card};

const POWER_OFF: u8 = 0x00;
const POWER_ON: u8 = 0x01;
const RESET: u8 = 0x02;
const GET_ATR: u8 = 0x04;

/// Connects to vpcd, retrying while it is not up yet (pcscd starts vpcd on demand).
pub fn connect(address: &str, patience: Duration) -> io::Result<TcpStream> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        match TcpStream::connect(address) {
            Ok(stream) => {
                // Without these each APDU waits ~40 ms for a delayed ACK (PIV.md, vpcd latency).
                stream.set_nodelay(true)?;
                quick_ack(&stream);
                return Ok(stream);
            }
            Err(error) if std::time::Instant::now() >= deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[cfg(target_os = "linux")]
fn quick_ack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_stream: &TcpStream) {}

/// Serves the card until vpcd closes the connection (`Ok`) or the socket fails (`Err`), or,
/// with `remove_on_ins`, until the card has carried out that instruction (`Ok`, no answer sent:
/// to the host the card was pulled out mid-command).
pub fn serve(stream: &mut TcpStream, card: &mut Card, remove_on_ins: Option<u8>) -> io::Result<()> {
    card.reset();
    let mut pulled_out = false;
    loop {
        // vpcd writes the length and the APDU separately with Nagle on: its second write waits
        // for our ACK of the first. Linux drops quick-ACK mode after a while, so re-arm it
        // before each read, or every APDU waits out the 40 ms delayed-ACK timer.
        quick_ack(stream);
        let mut length = [0u8; 2];
        match stream.read_exact(&mut length) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        }
        quick_ack(stream);
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut message)?;
        let reply = match message.as_slice() {
            [POWER_OFF] | [POWER_ON] | [RESET] => {
                tracing::debug!(code = message[0], "power event");
                card.reset();
                None
            }
            [GET_ATR] => Some(atr()),
            [other] => {
                tracing::warn!(code = other, "unknown vpcd control code");
                None
            }
            apdu => {
                let response = card.process(apdu);
                log_exchange(apdu, &response);
                if remove_on_ins.is_some() && apdu.get(1).copied() == remove_on_ins {
                    tracing::info!(ins = apdu[1], "removing the card before answering (fault injection)");
                    pulled_out = true;
                    None
                } else {
                    Some(response)
                }
            }
        };
        zeroize::Zeroize::zeroize(&mut message);
        if pulled_out {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        if let Some(reply) = reply {
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&(reply.len() as u16).to_be_bytes());
            framed.extend_from_slice(&reply);
            stream.write_all(&framed)?;
        }
    }
}

/// Logs instruction and status only: command data can hold PINs, PUKs and keys.
fn log_exchange(apdu: &[u8], response: &[u8]) {
    let sw = response.len().checked_sub(2).map(|i| u16::from_be_bytes([response[i], response[i + 1]]));
    match Command::parse(apdu) {
        Ok(command) => tracing::debug!(
            ins = format_args!("{:02X}", command.ins),
            p1 = format_args!("{:02X}", command.p1),
            p2 = format_args!("{:02X}", command.p2),
            lc = command.data.len(),
            sw = format_args!("{:04X}", sw.unwrap_or(0)),
            "apdu"
        ),
        Err(_) => tracing::debug!(len = apdu.len(), "malformed apdu"),
    }
}
