//! Feeds arbitrary bytes to both decoders, and folds whatever decodes as a server message into a
//! floor: nothing may panic, loop or allocate without bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use monti_protocol::codec::{decode_client, decode_server};
use monti_protocol::floor::Floor;

fuzz_target!(|data: &[u8]| {
    let _ = decode_client(data);
    // Several frames in one input: split on a marker byte so the fold sees sequences.
    let mut floor = Floor::awaiting_snapshot();
    for frame in data.split(|&byte| byte == 0xfe) {
        if let Ok(msg) = decode_server(frame) {
            let _ = floor.apply(&msg);
        }
    }
});
