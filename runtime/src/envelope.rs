//! Wire envelopes: a version byte, then an rkyv archive validated with bytecheck on
//! every receive. Undecodable bytes are an error, never a panic.

use rkyv::rancor;

use crate::task::{Control, Task, TaskResult};

/// Bumped whenever the archived layout of [`Envelope`] changes.
pub const ENVELOPE_VERSION: u8 = 3;

/// Everything that crosses a transport.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    Task(Task),
    Result(TaskResult),
    Control(Control),
    /// Several tasks in one message: one broker round trip for all of them.
    Tasks(Vec<Task>),
    /// Several results in one message.
    Results(Vec<TaskResult>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("empty message")]
    Empty,
    #[error("unsupported envelope version {found} (this build speaks {ENVELOPE_VERSION})")]
    Version { found: u8 },
    #[error("invalid envelope ({len} bytes): {reason}")]
    Invalid { len: usize, reason: String },
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        let archived = rkyv::to_bytes::<rancor::Error>(self).expect("in-memory serialization");
        let mut out = Vec::with_capacity(archived.len() + 1);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&archived);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let (&version, body) = bytes.split_first().ok_or(EnvelopeError::Empty)?;
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version { found: version });
        }
        // The version byte shifts the archive off its alignment: copy into an aligned buffer.
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
        aligned.extend_from_slice(body);
        rkyv::from_bytes::<Envelope, rancor::Error>(&aligned)
            .map_err(|e| EnvelopeError::Invalid { len: bytes.len(), reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{ArtifactRef, TaskKind};

    fn task() -> Task {
        Task {
            job: "job-1".into(),
            run: 1,
            id: "seg-3".into(),
            kind: TaskKind::Segment,
            plugin: "sim@1".into(),
            inputs: vec![ArtifactRef { uri: "mem:job-1/seg-3.in".into(), blake3: [7; 32], len: 9 }],
            start: 3,
            end: 4,
            attempt: 1,
            max_attempts: 3,
            deadline_ms: 1000,
            cost: 5,
            reply_to: "results".into(),
        }
    }

    #[test]
    fn round_trips() {
        let env = Envelope::Task(task());
        assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
    }

    #[test]
    fn batches_round_trip() {
        let mut second = task();
        second.id = "seg-4".into();
        let env = Envelope::Tasks(vec![task(), second]);
        assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
    }

    #[test]
    fn rejects_garbage_truncation_and_versions() {
        let bytes = Envelope::Task(task()).encode();
        assert_eq!(Envelope::decode(&[]), Err(EnvelopeError::Empty));
        assert!(matches!(Envelope::decode(&[9, 1, 2]), Err(EnvelopeError::Version { found: 9 })));
        assert!(matches!(Envelope::decode(&bytes[..bytes.len() - 5]), Err(EnvelopeError::Invalid { .. })));
        let mut garbage = bytes.clone();
        for b in garbage.iter_mut().skip(1) {
            *b = 0xff;
        }
        assert!(Envelope::decode(&garbage).is_err());
    }
}
