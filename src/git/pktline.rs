//! Pkt-lines through gix's packetline module, for the parts of a push gix
//! does not frame itself: the command list, and the report-status lines
//! that arrive inside side band 1.

use gix::bstr::BString;
use gix::protocol::transport::packetline::{self, PacketLineRef};

/// `data` as one pkt-line appended to `out`.
pub(crate) fn data(out: &mut Vec<u8>, data: &[u8]) -> std::io::Result<()> {
    packetline::blocking_io::encode::data_to_write(data, out).map(drop)
}

/// A flush-pkt appended to `out`.
pub(crate) fn flush(out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = packetline::blocking_io::encode::flush_to_write(out);
}

/// The data lines of a pkt-line stream (flushes end nothing here).
pub(crate) fn split(mut stream: &[u8]) -> Result<Vec<BString>, String> {
    let bad = || "a bad packet line in the report".to_string();
    let mut lines = Vec::new();
    while !stream.is_empty() {
        let (line, consumed) = match packetline::decode::streaming(stream).map_err(|_| bad())? {
            packetline::decode::Stream::Complete { line, bytes_consumed } => (line, bytes_consumed),
            packetline::decode::Stream::Incomplete { .. } => return Err(bad()),
        };
        if let PacketLineRef::Data(data) = line {
            lines.push(data.into());
        }
        stream = &stream[consumed..];
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_framed_as_git_does() {
        let mut out = Vec::new();
        data(&mut out, b"abc").unwrap();
        flush(&mut out);
        assert_eq!(out, b"0007abc0000");
    }

    #[test]
    fn packet_lines_split_and_flushes_are_skipped() {
        let lines = split(b"000eunpack ok\n0017ok refs/heads/main\n0000").unwrap();
        assert_eq!(
            lines,
            vec![
                BString::from("unpack ok\n"),
                BString::from("ok refs/heads/main\n")
            ]
        );
        assert!(split(b"00zz").is_err());
        assert!(split(b"0010short").is_err());
    }
}
