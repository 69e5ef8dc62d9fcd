//! docs/WIRE.md describes what the code does: the protocol version a client must send, and every
//! error code with its index and close code.

use monti_protocol::PROTOCOL_VERSION;
use monti_protocol::message::ErrorCode;

const WIRE: &str = include_str!("../../docs/WIRE.md");

#[test]
fn the_wire_document_names_the_current_protocol_version() {
    assert!(
        WIRE.contains(&format!("Protocol version **{PROTOCOL_VERSION}**")),
        "the heading's version"
    );
    assert!(
        WIRE.contains(&format!("`?protocol={PROTOCOL_VERSION}`")),
        "the version a client sends"
    );
    for other in 1..PROTOCOL_VERSION + 3 {
        if other != PROTOCOL_VERSION {
            assert!(
                !WIRE.contains(&format!("`?protocol={other}`")),
                "an old version {other} is still named"
            );
        }
    }
}

#[test]
fn every_error_code_is_in_the_table_with_its_index_and_close_code() {
    let codes = [
        ErrorCode::VersionMismatch,
        ErrorCode::BadFrame,
        ErrorCode::FrameTooLarge,
        ErrorCode::UnknownMessage,
        ErrorCode::UnexpectedMessage,
        ErrorCode::UnknownTeam,
        ErrorCode::UnknownSite,
        ErrorCode::TooSlow,
        ErrorCode::ShuttingDown,
        ErrorCode::TooManyConnections,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::UnsupportedFrame,
        ErrorCode::Internal,
        ErrorCode::TooManySubscriptions,
    ];
    let listed = u8::try_from(codes.len()).expect("few codes");
    for (index, code) in codes.into_iter().enumerate() {
        // The index is the postcard tag: the position in the enum.
        let encoded = postcard::to_allocvec(&code).expect("encodes");
        assert_eq!(usize::from(encoded[0]), index, "{code:?} moved");
        let row = format!("| {index} | {code:?} | {} |", code.close_code());
        assert!(WIRE.contains(&row), "docs/WIRE.md lacks the row {row}");
    }
    // A code added to the enum but not to the list above fails to encode at the next index.
    let next: Result<ErrorCode, _> = postcard::from_bytes(&[listed]);
    assert!(
        next.is_err(),
        "ErrorCode has a variant this test does not list"
    );
}

/// The bytes of the document's delta example, read from the document itself: the hex at the
/// start of each line of the code block after "Example:".
fn documented_example() -> Vec<u8> {
    let example = WIRE
        .split_once("Example: sequence 40,000")
        .expect("the delta example")
        .1;
    let block = example.split("```").nth(1).expect("its code block");
    block
        .lines()
        .flat_map(|line| {
            let hex = line.split("  ").next().unwrap_or_default();
            hex.split_whitespace()
                .map(|byte| u8::from_str_radix(byte, 16).expect("a hex byte"))
                .collect::<Vec<u8>>()
        })
        .collect()
}

#[test]
fn the_documented_delta_example_is_what_the_codec_writes() {
    use monti_protocol::codec::encode_server;
    use monti_protocol::message::{Delta, ServerMsg, StatusChange};
    use monti_protocol::model::{AgentId, AgentStatus};

    let delta = ServerMsg::Delta(Delta {
        seq: 40_000,
        time_step_ms: 100,
        changes: vec![StatusChange {
            agent: AgentId(1234),
            status: AgentStatus::OnCall,
            since_ms_ago: 30,
        }],
        roster: vec![],
        groups: vec![],
        queues: vec![],
    });
    let documented = documented_example();
    assert_eq!(documented.len(), 13, "the document says thirteen bytes");
    assert_eq!(encode_server(&delta).expect("encodes"), documented);
}
