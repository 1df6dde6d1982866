//! The config checker on any bytes: the fast KDL parser, the full check
//! (syntax, shape, decoding, cross-object validation) and rendering its
//! diagnostics must return, never panic, and every span must lie inside
//! the text on character boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = mooring::config::parse::fast::parse(text);
    let now = jiff::Timestamp::UNIX_EPOCH;
    let (_, diags) = mooring::config::check(std::path::Path::new("fuzz.kdl"), text.to_string(), now);
    for d in &diags.items {
        let (start, len) = (d.span.offset(), d.span.len());
        assert!(start + len <= text.len(), "span {start}+{len} past the end");
        assert!(text.is_char_boundary(start) && text.is_char_boundary(start + len));
    }
    let _ = diags.render(false, 100);
    let _ = diags.to_json();
});
