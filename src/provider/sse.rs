//! A Server-Sent Events parser, as the WHATWG HTML standard defines the `text/event-stream`
//! interpretation (§9.2.6, "Event stream interpretation"):
//! <https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>
//!
//! It is fed bytes exactly as they come off the socket, so frames may split anywhere: inside a
//! field name, between the CR and the LF of a CRLF, or inside a multi-byte UTF-8 character.
//! Lines are cut on bytes (CR and LF never occur inside a UTF-8 sequence), and only whole lines
//! are decoded, which makes every split point equivalent to no split at all.
//!
//! [`frame`] is the other direction, for the mock provider: one event as a server sends it.

/// The media type of an event stream (`content-type` of a response, `accept` of a request).
pub const CONTENT_TYPE: &str = "text/event-stream";

/// One event as the bytes a server sends: an `event:` line when it is named, one `data:` line
/// per line of `data`, and the blank line that dispatches it.
pub fn frame(event: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(name) = event {
        out.push_str("event: ");
        out.push_str(name);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `message` when the event named none.
    pub event: String,
    /// Every `data:` line of the event, joined with LF.
    pub data: String,
    /// The last event id seen so far in the stream (it persists across events, per the spec).
    pub id: String,
}

/// The most bytes one line, or one event's data, may hold (4 MiB). Real LLM events are a few
/// hundred bytes; a server that sends a 100 MB line must not make gate buffer it. Past the
/// limit the parser stops (`overflowed`), and the stream counts as an `event_too_large` error.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// Incremental parser; one per response body.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous byte was a CR: an LF right after it (perhaps in the next chunk) ends no line.
    after_cr: bool,
    /// Bytes of a leading byte-order mark matched so far; `None` once the start has passed.
    bom: Option<usize>,
    started: bool,
    event: String,
    data: String,
    last_id: String,
    /// The last valid `retry:` value (milliseconds), if any.
    pub retry_ms: Option<u64>,
    /// Comment lines (`: ping`) seen; they keep connections alive and carry nothing.
    pub comments: u64,
    /// A line or an event went past [`MAX_EVENT_BYTES`]; nothing more is parsed.
    overflowed: bool,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// True once a line or an event went past [`MAX_EVENT_BYTES`]: the stream is unusable.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Append to the pending line, unless that takes it past the limit.
    fn extend_line(&mut self, bytes: &[u8]) -> bool {
        if self.line.len() + bytes.len() > MAX_EVENT_BYTES {
            self.overflowed = true;
            self.line = Vec::new();
            return false;
        }
        self.line.extend_from_slice(bytes);
        true
    }

    /// Feed the next chunk of the body; complete events are appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        if self.overflowed {
            return;
        }
        let mut rest = bytes;
        // One U+FEFF at the very start of the stream is dropped, even when it arrives split.
        if !self.started {
            let matched = self.bom.get_or_insert(0);
            while *matched < BOM.len() {
                match rest.first() {
                    None => return,
                    Some(&b) if b == BOM[*matched] => {
                        *matched += 1;
                        rest = &rest[1..];
                    }
                    Some(_) => {
                        // Not a BOM after all: what looked like one is ordinary line content.
                        self.line.extend_from_slice(&BOM[..*matched]);
                        break;
                    }
                }
            }
            self.started = true;
        }
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
                None => {
                    self.extend_line(rest);
                    return;
                }
                Some(i) => {
                    if !self.extend_line(&rest[..i]) {
                        return;
                    }
                    self.after_cr = rest[i] == b'\r';
                    rest = &rest[i + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&line, out);
                    if self.overflowed {
                        return;
                    }
                    self.line = line;
                    self.line.clear();
                }
            }
        }
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&*text, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.data.len() + value.len() >= MAX_EVENT_BYTES {
                    self.overflowed = true;
                    self.data = String::new();
                    return;
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {} // unknown fields are ignored
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the LF after the last data line
        out.push(SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        });
    }

    /// The stream ended. Per the spec an event not closed by a blank line is discarded: a stream
    /// cut in the middle of an event never delivers it.
    pub fn has_partial_event(&self) -> bool {
        !self.data.is_empty() || !self.line.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out);
        }
        out
    }

    fn parse(s: &str) -> Vec<SseEvent> {
        parse_chunks(&[s.as_bytes()])
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: String::new(),
        }
    }

    #[test]
    fn frames_parse_back_to_their_event() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(frame(Some("ping"), "{}").as_bytes(), &mut out);
        p.feed(frame(None, "a\nb").as_bytes(), &mut out);
        assert_eq!(out, vec![ev("ping", "{}"), ev("message", "a\nb")]);
        assert_eq!(frame(Some("x"), "1"), "event: x\ndata: 1\n\n");
        assert!(!p.has_partial_event());
    }

    #[test]
    fn every_line_ending_form() {
        let want = vec![ev("message", "a"), ev("x", "b")];
        assert_eq!(parse("data: a\n\nevent: x\ndata: b\n\n"), want);
        assert_eq!(parse("data: a\r\n\r\nevent: x\r\ndata: b\r\n\r\n"), want);
        assert_eq!(parse("data: a\r\revent: x\rdata: b\r\r"), want);
        assert_eq!(parse("data: a\r\n\nevent: x\rdata: b\n\r\n"), want);
    }

    #[test]
    fn comments_multi_line_data_and_field_forms() {
        let got = parse(": ping\n\ndata: one\ndata:two\ndata\n:comment\ndata:  three\n\n");
        assert_eq!(got, vec![ev("message", "one\ntwo\n\n three")]);
        // A comment-only block and an event with no data dispatch nothing.
        assert_eq!(parse(":\n\nevent: ping\n\n"), vec![]);
        // Empty data still dispatches, with empty data; the event type resets after dispatch.
        assert_eq!(
            parse("event: e\ndata:\n\ndata: x\n\n"),
            vec![ev("e", ""), ev("message", "x")]
        );
        // Unknown fields are ignored, a field named with no colon has an empty value.
        assert_eq!(parse("foo: bar\ndata: y\n\n"), vec![ev("message", "y")]);
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b": hi\n: there\n", &mut out);
        assert_eq!(p.comments, 2);
    }

    #[test]
    fn id_and_retry_fields() {
        let got = parse("id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n");
        let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        // The id persists; an id with NUL is ignored; `id` alone resets it.
        assert_eq!(ids, ["7", "7", "7", ""]);
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"retry: 1500\n\nretry: 12a\n\nretry:\n\n", &mut out);
        assert_eq!(p.retry_ms, Some(1500));
        assert!(out.is_empty());
    }

    #[test]
    fn a_leading_bom_is_dropped_once_even_split() {
        let bom = "\u{FEFF}";
        assert_eq!(
            parse(&format!("{bom}data: a\n\n")),
            vec![ev("message", "a")]
        );
        assert_eq!(
            parse_chunks(&[&[0xEF], &[0xBB], &[0xBF], b"data: a\n\n"]),
            vec![ev("message", "a")]
        );
        // A second BOM is content: its field name is then not `data`.
        assert_eq!(parse(&format!("{bom}{bom}data: a\n\n")), vec![]);
        // Something that only starts like a BOM is content.
        let got = parse_chunks(&[&[0xEF, 0xBB], b"x\ndata: b\n\n"]);
        assert_eq!(got, vec![ev("message", "b")]);
    }

    #[test]
    fn cr_at_the_end_of_one_chunk_and_lf_at_the_start_of_the_next() {
        let got = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![ev("message", "a\nb")]);
    }

    #[test]
    fn utf8_split_across_chunks() {
        let text = "data: héllo → 世界 🎉\n\n".as_bytes();
        for i in 1..text.len() {
            let got = parse_chunks(&[&text[..i], &text[i..]]);
            assert_eq!(got, vec![ev("message", "héllo → 世界 🎉")], "split at {i}");
        }
    }

    #[test]
    fn an_unterminated_event_is_not_dispatched() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"data: a\n\ndata: half", &mut out);
        assert_eq!(out, vec![ev("message", "a")]);
        assert!(p.has_partial_event());
    }

    /// A random but valid stream: events with names, ids, multi-line and non-ASCII data,
    /// comments, every line ending, an optional BOM.
    fn random_stream(rng: &mut SmallRng) -> Vec<u8> {
        const PIECES: &[&str] = &[
            "a",
            "b c",
            "{\"x\":1}",
            "é",
            "世界",
            "🎉",
            " ",
            ":",
            "x:y",
            "",
        ];
        let endings = ["\n", "\r\n", "\r"];
        let mut s = String::new();
        if rng.random_bool(0.2) {
            s.push('\u{FEFF}');
        }
        for _ in 0..rng.random_range(1..12) {
            let nl = |rng: &mut SmallRng| endings[rng.random_range(0..3)];
            if rng.random_bool(0.3) {
                s.push_str(": ping");
                s.push_str(nl(rng));
            }
            if rng.random_bool(0.5) {
                s.push_str("event: e");
                s.push_str(&rng.random_range(0..5).to_string());
                s.push_str(nl(rng));
            }
            if rng.random_bool(0.2) {
                s.push_str("id: ");
                s.push_str(&rng.random_range(0..100).to_string());
                s.push_str(nl(rng));
            }
            for _ in 0..rng.random_range(0..4) {
                s.push_str(if rng.random_bool(0.5) {
                    "data: "
                } else {
                    "data:"
                });
                for _ in 0..rng.random_range(0..4) {
                    s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
                }
                s.push_str(nl(rng));
            }
            s.push_str(nl(rng));
        }
        s.into_bytes()
    }

    #[test]
    fn property_random_splits_give_identical_events() {
        let mut rng = SmallRng::seed_from_u64(0x55e);
        for case in 0..500 {
            let stream = random_stream(&mut rng);
            let whole = parse_chunks(&[&stream]);
            // Random cut points, including inside UTF-8 sequences and between CR and LF.
            let mut cuts: Vec<usize> = (0..rng.random_range(1..8))
                .map(|_| rng.random_range(0..=stream.len()))
                .collect();
            cuts.sort();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts {
                chunks.push(&stream[at..c]);
                at = c;
            }
            chunks.push(&stream[at..]);
            assert_eq!(parse_chunks(&chunks), whole, "case {case}");
            // And the extreme: one byte at a time.
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(parse_chunks(&bytes), whole, "case {case}, byte by byte");
        }
    }

    #[test]
    fn a_line_past_the_limit_stops_the_parser_without_buffering_it() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"data: ok\n\n", &mut out);
        assert_eq!(out.len(), 1);
        let chunk = vec![b'x'; 1 << 20];
        p.feed(b"data: ", &mut out);
        for _ in 0..100 {
            // 100 MB of one line, a megabyte at a time.
            p.feed(&chunk, &mut out);
        }
        assert!(p.overflowed());
        assert!(p.line.capacity() <= MAX_EVENT_BYTES, "the line is not kept");
        p.feed(b"\n\ndata: late\n\n", &mut out);
        assert_eq!(out.len(), 1, "nothing is parsed after an overflow");
    }

    #[test]
    fn an_event_of_many_lines_past_the_limit_overflows() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let line = format!("data: {}\n", "y".repeat(1 << 16));
        for _ in 0..(MAX_EVENT_BYTES / (1 << 16) + 2) {
            p.feed(line.as_bytes(), &mut out);
        }
        assert!(p.overflowed());
        assert!(out.is_empty());
        // Just under the limit is fine.
        let mut q = SseParser::new();
        q.feed(line.as_bytes(), &mut out);
        q.feed(b"\n", &mut out);
        assert!(!q.overflowed());
        assert_eq!(out.len(), 1);
    }
}
