#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    btorrent_fuzz::mse_handshake(data);
});
