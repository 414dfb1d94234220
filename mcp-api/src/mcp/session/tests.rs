//! Unit tests of `session.rs`.

use std::collections::HashSet;

use super::*;

const IDLE: Duration = Duration::from_secs(60);

fn table(max_sessions: usize, max_per_subject: usize) -> SessionTable {
    SessionTable::new(SessionLimits {
        max_sessions,
        max_per_subject,
        max_streams: max_sessions,
        max_streams_per_subject: max_per_subject,
        idle_timeout: IDLE,
    })
}

fn owner(name: &str) -> Owner {
    Owner::new(name).unwrap()
}

const V: ProtocolVersion = ProtocolVersion::V2025_06_18;

#[test]
fn ids_are_visible_ascii_and_distinct() {
    let ids: HashSet<String> = (0..256).map(|_| new_session_id().0).collect();
    assert_eq!(ids.len(), 256);
    for id in &ids {
        assert_eq!(id.len(), 40);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}

#[test]
fn every_bit_of_an_id_varies() {
    // With 32 draws, every bit is set at least once except with probability 160 * 2^-32.
    let union = (0..32).fold([0u8; 20], |mut acc, _| {
        let id = new_session_id().0;
        for (i, a) in acc.iter_mut().enumerate() {
            *a |= u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap();
        }
        acc
    });
    assert_eq!(union, [0xFF; 20]);
}

#[test]
fn a_session_belongs_to_its_subject() {
    let sessions = table(10, 10);
    let now = Instant::now();
    let id = sessions.open_streamable(&owner("alice"), V, now).unwrap();
    assert_eq!(
        sessions.use_streamable(id.as_str(), &owner("alice"), now),
        Some(V)
    );
    assert_eq!(
        sessions.use_streamable(id.as_str(), &owner("mallory"), now),
        None
    );
    assert!(!sessions.close_streamable(id.as_str(), &owner("mallory"), now));
    assert!(sessions.close_streamable(id.as_str(), &owner("alice"), now));
    assert_eq!(
        sessions.use_streamable(id.as_str(), &owner("alice"), now),
        None
    );
}

#[test]
fn closing_an_expired_or_legacy_session_fails_and_drops_only_the_expired_one() {
    let sessions = table(10, 10);
    let t0 = Instant::now();
    let idle = sessions.open_streamable(&owner("alice"), V, t0).unwrap();
    let (sender, _receiver) = mpsc::channel(1);
    let legacy = sessions.open_legacy(&owner("alice"), sender, t0).unwrap();
    let later = t0 + IDLE + Duration::from_millis(1);
    assert!(!sessions.close_streamable(idle.as_str(), &owner("alice"), later));
    assert!(!sessions.close_streamable(legacy.as_str(), &owner("alice"), later));
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions
            .use_legacy(legacy.as_str(), &owner("alice"), later)
            .is_some()
    );
}

#[test]
fn idle_sessions_expire_and_use_extends_them() {
    let sessions = table(10, 10);
    let t0 = Instant::now();
    let id = sessions.open_streamable(&owner("alice"), V, t0).unwrap();
    let t1 = t0 + IDLE;
    assert!(
        sessions
            .use_streamable(id.as_str(), &owner("alice"), t1)
            .is_some()
    );
    let t2 = t1 + IDLE + Duration::from_millis(1);
    assert!(
        sessions
            .use_streamable(id.as_str(), &owner("alice"), t2)
            .is_none()
    );
    assert_eq!(sessions.len(), 0);
}

#[test]
fn a_full_table_drops_expired_sessions_first() {
    let sessions = table(2, 10);
    let t0 = Instant::now();
    let expired = sessions.open_streamable(&owner("a"), V, t0).unwrap();
    let b = sessions
        .open_streamable(&owner("b"), V, t0 + Duration::from_secs(2))
        .unwrap();
    let later = t0 + IDLE + Duration::from_secs(1);
    let c = sessions.open_streamable(&owner("c"), V, later).unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .use_streamable(expired.as_str(), &owner("a"), later)
            .is_none()
    );
    assert!(
        sessions
            .use_streamable(b.as_str(), &owner("b"), later)
            .is_some()
    );
    assert!(
        sessions
            .use_streamable(c.as_str(), &owner("c"), later)
            .is_some()
    );
}

#[test]
fn a_full_table_then_closes_the_least_recently_used_streamable_session() {
    let sessions = table(2, 10);
    let t0 = Instant::now();
    let oldest = sessions.open_streamable(&owner("a"), V, t0).unwrap();
    let newer = sessions
        .open_streamable(&owner("b"), V, t0 + Duration::from_secs(1))
        .unwrap();
    let t2 = t0 + Duration::from_secs(2);
    let newest = sessions.open_streamable(&owner("c"), V, t2).unwrap();
    assert!(
        sessions
            .use_streamable(oldest.as_str(), &owner("a"), t2)
            .is_none()
    );
    assert!(
        sessions
            .use_streamable(newer.as_str(), &owner("b"), t2)
            .is_some()
    );
    assert!(
        sessions
            .use_streamable(newest.as_str(), &owner("c"), t2)
            .is_some()
    );
}

#[test]
fn a_table_full_of_live_streams_refuses() {
    let sessions = table(1, 10);
    let now = Instant::now();
    let (sender, _receiver) = mpsc::channel(1);
    sessions.open_legacy(&owner("a"), sender, now).unwrap();
    assert_eq!(
        sessions.open_streamable(&owner("b"), V, now + IDLE * 10),
        Err(OpenError::Full)
    );
    let (sender, _receiver) = mpsc::channel(1);
    assert_eq!(
        sessions.open_legacy(&owner("b"), sender, now),
        Err(OpenError::Full)
    );
    assert_eq!(
        table(0, 10).open_streamable(&owner("a"), V, now),
        Err(OpenError::Full)
    );
}

#[test]
fn a_subject_at_its_quota_loses_its_own_oldest_session() {
    let sessions = table(10, 2);
    let t0 = Instant::now();
    let first = sessions.open_streamable(&owner("a"), V, t0).unwrap();
    let second = sessions
        .open_streamable(&owner("a"), V, t0 + Duration::from_secs(1))
        .unwrap();
    let other = sessions.open_streamable(&owner("b"), V, t0).unwrap();
    let t3 = t0 + Duration::from_secs(3);
    sessions.open_streamable(&owner("a"), V, t3).unwrap();
    assert!(
        sessions
            .use_streamable(first.as_str(), &owner("a"), t3)
            .is_none()
    );
    assert!(
        sessions
            .use_streamable(second.as_str(), &owner("a"), t3)
            .is_some()
    );
    assert!(
        sessions
            .use_streamable(other.as_str(), &owner("b"), t3)
            .is_some()
    );
}

#[test]
fn legacy_and_streamable_ids_do_not_mix() {
    let sessions = table(10, 10);
    let now = Instant::now();
    let (sender, _receiver) = mpsc::channel(1);
    let legacy = sessions.open_legacy(&owner("a"), sender, now).unwrap();
    let streamable = sessions.open_streamable(&owner("a"), V, now).unwrap();
    assert!(
        sessions
            .use_streamable(legacy.as_str(), &owner("a"), now)
            .is_none()
    );
    assert!(
        sessions
            .use_legacy(streamable.as_str(), &owner("a"), now)
            .is_none()
    );
    assert!(
        sessions
            .use_legacy(legacy.as_str(), &owner("b"), now)
            .is_none()
    );
    sessions.set_legacy_version(legacy.as_str(), &owner("a"), V);
    let stream = sessions
        .use_legacy(legacy.as_str(), &owner("a"), now)
        .unwrap();
    assert_eq!(stream.version, Some(V));
    // Legacy sessions do not idle out while their stream is open.
    let much_later = now + IDLE * 10;
    assert!(
        sessions
            .use_legacy(legacy.as_str(), &owner("a"), much_later)
            .is_some()
    );
}

#[test]
fn closing_ends_legacy_streams_and_refuses_new_ones() {
    let sessions = Arc::new(table(10, 10));
    let now = Instant::now();
    let (sender, mut receiver) = mpsc::channel(1);
    sessions.open_legacy(&owner("a"), sender, now).unwrap();
    sessions.open_streamable(&owner("a"), V, now).unwrap();
    assert_eq!(sessions.close_legacy_streams(), 1);
    assert!(receiver.try_recv().is_err());
    assert!(receiver.is_closed());
    assert_eq!(sessions.len(), 1);
    let (sender, _receiver) = mpsc::channel(1);
    assert_eq!(
        sessions.open_legacy(&owner("a"), sender, now),
        Err(OpenError::Closing)
    );
}

#[test]
fn dropping_the_guard_forgets_the_stream() {
    let sessions = Arc::new(table(10, 10));
    let (sender, _receiver) = mpsc::channel(1);
    let id = sessions
        .open_legacy(&owner("a"), sender, Instant::now())
        .unwrap();
    let guard = StreamGuard::new(Arc::clone(&sessions), id);
    assert_eq!(sessions.len(), 1);
    drop(guard);
    assert_eq!(sessions.len(), 0);
}

#[test]
fn streams_beyond_a_subjects_cap_are_refused_and_never_evicted() {
    let sessions = SessionTable::new(SessionLimits {
        max_sessions: 100,
        max_per_subject: 1,
        max_streams: 10,
        max_streams_per_subject: 2,
        idle_timeout: IDLE,
    });
    let now = Instant::now();
    let mut receivers = Vec::new();
    let mut open = |name: &str| {
        let (sender, receiver) = mpsc::channel(1);
        receivers.push(receiver);
        sessions.open_legacy(&owner(name), sender, now)
    };
    let first = open("alice").unwrap();
    open("alice").unwrap();
    assert_eq!(open("alice"), Err(OpenError::SubjectLimit));
    // The refusal closed nothing: both streams are still alice's.
    assert!(
        sessions
            .use_legacy(first.as_str(), &owner("alice"), now)
            .is_some()
    );
    assert_eq!(sessions.streams(), 2);
    // Streams and Streamable HTTP sessions have separate per-subject quotas.
    sessions.open_streamable(&owner("alice"), V, now).unwrap();
    sessions.open_streamable(&owner("alice"), V, now).unwrap();
    assert_eq!(sessions.streams(), 2);
    assert_eq!(sessions.len(), 3);
    // Another subject is not affected.
    open("bob").unwrap();
    // A closed stream frees its slot.
    sessions.remove_legacy(first.as_str());
    open("alice").unwrap();
}

#[test]
fn streams_beyond_the_total_cap_are_refused_with_full() {
    let sessions = SessionTable::new(SessionLimits {
        max_sessions: 100,
        max_per_subject: 10,
        max_streams: 2,
        max_streams_per_subject: 10,
        idle_timeout: IDLE,
    });
    let now = Instant::now();
    let mut receivers = Vec::new();
    for name in ["a", "b", "c"] {
        let (sender, receiver) = mpsc::channel(1);
        receivers.push(receiver);
        let opened = sessions.open_legacy(&owner(name), sender, now);
        assert_eq!(opened.is_ok(), name != "c", "{name}");
        if name == "c" {
            assert_eq!(opened, Err(OpenError::Full));
        }
    }
    // Streamable HTTP sessions are still possible.
    assert!(sessions.open_streamable(&owner("c"), V, now).is_ok());
}
