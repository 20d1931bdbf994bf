//! Truncation check for JPEG files. libjpeg (like zune-jpeg before it) fills a scan that runs
//! out of bytes with grey and only warns; PIL instead raises "image file is truncated". A cut
//! file is recognised here by its marker structure ending before the end-of-image marker.

/// Whether a JPEG's segments run to its end-of-image marker (`FF D9`). Walks the marker
/// structure (segment lengths, entropy-coded data up to the next marker), so thumbnails inside
/// APP segments and data appended after EOI do not fool it; running out of bytes first means the
/// file was cut.
pub(super) fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Next marker: skip stray bytes and 0xFF fill.
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue, // standalone markers
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return false;
        };
        i += len;
        if len < 2 || i > b.len() {
            return false;
        }
        if marker == 0xDA {
            // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte), a restart marker,
            // or the next real marker.
            loop {
                while i < b.len() && b[i] != 0xFF {
                    i += 1;
                }
                match b.get(i + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => i += 2,
                    Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}
