//! Hostile `.pth` headers: a small zip whose pickle describes one tensor with sizes, strides or
//! offsets that overflow, ask for more than the limit, or miss arguments. Each must be a clear
//! error naming the tensor, never a panic or an enormous allocation.
use std::io::Write;
use std::path::Path;

use super::read_pth;

/// Pickle opcodes used below (Python's `pickletools` names).
const PROTO: &[u8] = b"\x80\x02";
const EMPTY_DICT: u8 = b'}';
const MARK: u8 = b'(';
const TUPLE: u8 = b't';
const BINPERSID: u8 = b'Q';
const REDUCE: u8 = b'R';
const SETITEM: u8 = b's';
const NEWFALSE: u8 = 0x89;
const LONG1: u8 = 0x8a;
const STOP: u8 = b'.';

fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X'); // BINUNICODE
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn global(out: &mut Vec<u8>, module: &str, name: &str) {
    out.push(b'c');
    out.extend(format!("{module}\n{name}\n").as_bytes());
}

/// BININT when `v` fits 32 bits (what torch writes for sizes), else LONG1.
fn int(out: &mut Vec<u8>, v: i64) {
    match i32::try_from(v) {
        Ok(small) => {
            out.push(b'J');
            out.extend(small.to_le_bytes());
        }
        Err(_) => {
            out.push(LONG1);
            out.push(8);
            out.extend(v.to_le_bytes());
        }
    }
}

fn tuple(out: &mut Vec<u8>, values: &[i64]) {
    out.push(MARK);
    for &v in values {
        int(out, v);
    }
    out.push(TUPLE);
}

/// `{"w": _rebuild_tensor_v2(storage "0" (float, 4 elements), offset, size, stride, ...)}`
/// with only the first `n_args` rebuild arguments.
fn pickle(offset: i64, size: &[i64], stride: &[i64], n_args: usize) -> Vec<u8> {
    pickle_of("FloatStorage", offset, size, stride, n_args)
}

fn pickle_of(storage: &str, offset: i64, size: &[i64], stride: &[i64], n_args: usize) -> Vec<u8> {
    let mut p = PROTO.to_vec();
    p.push(EMPTY_DICT);
    unicode(&mut p, "w");
    global(&mut p, "torch._utils", "_rebuild_tensor_v2");
    p.push(MARK);
    // arg 0: the storage, a persistent id ("storage", FloatStorage, key, location, numel).
    p.push(MARK);
    unicode(&mut p, "storage");
    global(&mut p, "torch", storage);
    unicode(&mut p, "0");
    unicode(&mut p, "cpu");
    int(&mut p, 4);
    p.push(TUPLE);
    p.push(BINPERSID);
    if n_args > 1 {
        int(&mut p, offset);
    }
    if n_args > 2 {
        tuple(&mut p, size);
    }
    if n_args > 3 {
        tuple(&mut p, stride);
    }
    if n_args > 4 {
        p.push(NEWFALSE);
        p.push(EMPTY_DICT);
    }
    p.push(TUPLE);
    p.push(REDUCE);
    p.push(SETITEM);
    p.push(STOP);
    p
}

/// A zip-format checkpoint with `pickle` as `archive/data.pkl` and 16 bytes of storage `0`.
fn write_pth(path: &Path, pickle: &[u8]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", options).unwrap();
    zip.write_all(pickle).unwrap();
    zip.start_file("archive/data/0", options).unwrap();
    zip.write_all(&[0u8; 16]).unwrap();
    zip.finish().unwrap();
}

/// The reason given for skipping tensor `w`.
fn skip_reason(pickle: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.pth");
    write_pth(&path, pickle);
    let state = read_pth(&path).expect("the file itself is readable");
    assert!(state.tensors.is_empty(), "no tensor should be read");
    assert_eq!(state.skipped.len(), 1, "{:?}", state.skipped);
    assert_eq!(state.skipped[0].0, "w");
    state.skipped[0].1.clone()
}

#[test]
fn a_well_formed_tensor_is_read() {
    // The builder itself is right: a [2, 2] float tensor over the 16 bytes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.pth");
    write_pth(&path, &pickle(0, &[2, 2], &[2, 1], 5));
    let state = read_pth(&path).unwrap();
    assert_eq!(state.tensors.len(), 1, "{:?}", state.skipped);
    assert_eq!(state.tensors[0].1.dims(), [2, 2]);
}

#[test]
fn overflowing_sizes_are_an_error() {
    // Sizes are 32-bit in the pickle: a contiguous [2^31 - 1, 2^31 - 1] of doubles needs
    // ~2^65 bytes, past a 64-bit byte count.
    let big = i64::from(i32::MAX);
    let reason = skip_reason(&pickle_of("DoubleStorage", 0, &[big, big], &[big, 1], 5));
    assert!(reason.contains("overflow"), "{reason}");
}

#[test]
fn an_overflowing_offset_is_an_error() {
    let reason = skip_reason(&pickle(1i64 << 62, &[2], &[1], 5));
    assert!(reason.contains("overflow"), "{reason}");
}

#[test]
fn a_tensor_over_the_limit_is_an_error_naming_it() {
    // 2^40 floats = 4 TiB: no overflow, but far over the limit; nothing is allocated.
    let reason = skip_reason(&pickle(0, &[1 << 30, 1 << 10], &[1 << 10, 1], 5));
    assert!(reason.contains("limit"), "{reason}");
}

#[test]
fn negative_sizes_and_missing_arguments_are_errors() {
    let reason = skip_reason(&pickle(0, &[-2, 2], &[2, 1], 5));
    assert!(reason.contains("size"), "{reason}");
    let reason = skip_reason(&pickle(0, &[2, 2], &[2, 1], 2));
    assert!(reason.contains("argument"), "{reason}");
}
