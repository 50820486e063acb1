//! The pipe between a campaign and its worker: length-prefixed frames,
//! requests and responses as JSON, a `Load` followed by a raw module frame.

use crate::case::Plan;
use crate::outcome::Outcome;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

#[derive(Serialize, Deserialize)]
pub(super) enum Request {
    /// Followed by one frame with the module bytes.
    Load {
        plan: Plan,
    },
    Run {
        config: String,
    },
    /// Build these configurations' engines now; no response. Sent to a
    /// spare worker as it starts, so it takes over with engines ready.
    Warm {
        configs: Vec<String>,
    },
}

#[derive(Serialize, Deserialize)]
pub(super) enum Response {
    Outcome(Outcome),
    Unsupported,
    UnknownConfig,
    /// Sent by the panic hook just before the worker aborts.
    Panic {
        message: String,
        location: Option<String>,
        /// The call sites' offsets in the worker executable, innermost
        /// first (`None` outside it), for the parent to name.
        frames: Vec<Option<u64>>,
        #[serde(default)]
        wasm: Option<String>,
    },
}

pub(super) fn write_frame(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u32).to_le_bytes())?;
    w.write_all(bytes)?;
    w.flush()
}

pub(super) fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"hello");
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"");
        assert!(read_frame(&mut r).unwrap().is_none());
    }
}
