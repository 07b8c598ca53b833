//! A feed's bytes as UTF-8 text, whatever encoding it was sent in.

use std::ops::Range;

/// The feed as UTF-8 text, whatever it was sent in: the HTTP charset wins, then the
/// XML declaration's `encoding` (EUC-KR is still common on Korean blogs).
pub fn decode(bytes: &[u8], http_charset: Option<&str>) -> Result<String, String> {
    let declared = || {
        let range = declared_encoding(bytes)?;
        std::str::from_utf8(bytes.get(range)?).ok()
    };
    let label = http_charset.or_else(declared);
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.trim().as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _, malformed) = encoding.decode(bytes);
    if malformed && encoding == encoding_rs::UTF_8 {
        return Err("the feed is not valid UTF-8 and declares no other encoding".into());
    }
    let text = text.into_owned();
    // The text is UTF-8 now: its declaration says so, or the XML parser would
    // decode it again.
    match declared_encoding(text.as_bytes()) {
        Some(range)
            if !text
                .get(range.clone())
                .is_some_and(|e| e.eq_ignore_ascii_case("utf-8")) =>
        {
            match (text.get(..range.start), text.get(range.end..)) {
                (Some(head), Some(tail)) => Ok(format!("{head}UTF-8{tail}")),
                _ => Ok(text),
            }
        }
        _ => Ok(text),
    }
}

/// Where the XML declaration at the very start of `bytes` names its encoding:
/// the byte range of the name. Only the declaration is read (`<?xml … ?>`, after
/// a UTF-8 byte order mark if there is one), byte by byte.
fn declared_encoding(bytes: &[u8]) -> Option<Range<usize>> {
    let start = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let after = start + b"<?xml".len();
    if !bytes.get(start..)?.starts_with(b"<?xml") {
        return None;
    }
    let end = after + memchr::memmem::find(bytes.get(after..)?, b"?>")?;
    let declaration = bytes.get(..end)?;
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    // `encoding` as a pseudo-attribute: after white space, then `=`, then a quote.
    let mut from = after;
    let name_at = loop {
        let at = from + memchr::memmem::find(declaration.get(from..)?, b"encoding")?;
        from = at + b"encoding".len();
        if declaration.get(at - 1).is_some_and(space) {
            break from;
        }
    };
    let mut i = name_at;
    let skip_space = |mut i: usize| {
        while declaration.get(i).is_some_and(space) {
            i += 1;
        }
        i
    };
    i = skip_space(i);
    if declaration.get(i) != Some(&b'=') {
        return None;
    }
    i = skip_space(i + 1);
    let quote = *declaration.get(i).filter(|q| matches!(q, b'"' | b'\''))?;
    let value_start = i + 1;
    let len = declaration
        .get(value_start..)?
        .iter()
        .position(|&b| b == quote)?;
    let value = declaration.get(value_start..value_start + len)?;
    // EncName: [A-Za-z] ([A-Za-z0-9._] | '-')*
    let well_formed = value.first().is_some_and(u8::is_ascii_alphabetic)
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    well_formed.then_some(value_start..value_start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euc_kr_feeds_are_decoded() {
        let (bytes, _, _) = encoding_rs::EUC_KR.encode("<?xml version=\"1.0\" encoding=\"euc-kr\"?><rss><channel><title>한글</title></channel></rss>");
        let text = decode(&bytes, None).unwrap();
        assert!(text.contains("<title>한글</title>"));
        assert!(text.contains("encoding=\"UTF-8\""));
        assert!(decode(&[0xff, 0xfe, 0x41], None).is_err());
    }

    #[test]
    fn a_multibyte_character_after_the_declaration_is_not_cut() {
        let bytes = "<?xml version=\"1.0\"?><!-- encoding=éx --><rss/>".as_bytes();
        assert_eq!(
            decode(bytes, None).unwrap(),
            "<?xml version=\"1.0\"?><!-- encoding=éx --><rss/>"
        );
        // Only the declaration names the encoding, in quotes.
        let (bytes, _, _) = encoding_rs::EUC_KR.encode(
            "<?xml version='1.0' encoding = 'EUC-KR' standalone='yes'?><t>한글</t><!-- encoding=\"x\" -->",
        );
        assert_eq!(
            decode(&bytes, None).unwrap(),
            "<?xml version='1.0' encoding = 'UTF-8' standalone='yes'?><t>한글</t><!-- encoding=\"x\" -->"
        );
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(
            head in proptest::sample::select(vec![
                "",
                "<?xml",
                "<?xml version=\"1.0\" encoding=\"",
                "<?xml encoding='",
                "\u{feff}<?xml version=\"1.0\" encoding=",
                "<?xml version=\"1.0\"?><!-- encoding=",
            ]),
            bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..300),
            charset in proptest::option::of("[a-zA-Z0-9_ -]{0,12}"),
        ) {
            let mut all = head.as_bytes().to_vec();
            all.extend_from_slice(&bytes);
            let _ = decode(&all, charset.as_deref());
            let _ = decode(&bytes, None);
        }
    }
}
