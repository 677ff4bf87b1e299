//! The work tree's index at fleet scale, as Git's split index.
//!
//! A fleet's work tree holds over a million files, and Git's index lists every one of them
//! (~200 MB at 10,000 clusters). Rewriting it whole on each commit made a one-cluster render
//! seven times slower with a work tree than without. So the index is split, in Git's own
//! format (`core.splitIndex`, the `link` extension): a render that rewrites everything
//! writes the whole list once as the shared base (`.git/sharedindex.<sha1>`), plus a map of
//! where every 128th entry lies in it; every later commit writes only `.git/index` — new
//! entries for the base's paths it rewrote (replacements), entries for new paths, and a
//! bitmap of the base entries it removed. Git, gix and `git status` read the pair as one
//! index, and Git keeps it split when it refreshes stat data. Whatever this module does not
//! recognise (an index Git wrote unsplit, a base without its map, a version-4 index, flags
//! atoll never sets) makes the caller rebuild the whole index, so the result is always a
//! correct index. Files are replaced by rename, never rewritten in place: a render killed
//! at any instant leaves the old index or the new one.

use gix::ObjectId;
use gix::index::entry::Stat;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Where the map of the shared base lives, next to it in `.git`.
const MAP_FILE: &str = "atoll-index-map";
const MAP_MAGIC: &[u8] = b"atoll index map 1\n";
/// Every `STRIDE`th base entry is in the map: a lookup decodes at most this many entries.
const STRIDE: usize = 128;
/// Fixed part of a version-2 index entry: ten 32-bit stat words, the object id, the flags.
const FIXED: usize = 40 + 20 + 2;

/// One index entry as atoll writes it: stage 0, no extended flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: Vec<u8>,
    pub id: ObjectId,
    pub mode: u32,
    pub stat: Stat,
}

/// Why the split index cannot be patched: the caller writes it whole instead.
#[derive(Debug)]
pub(crate) enum Unpatchable {
    /// Not an index this module wrote or can follow (the reason, for a debugger's eyes).
    Unknown(#[allow(dead_code)] &'static str),
    Io(std::io::Error),
}

impl From<std::io::Error> for Unpatchable {
    fn from(e: std::io::Error) -> Self {
        Unpatchable::Io(e)
    }
}

fn unknown<T>(why: &'static str) -> Result<T, Unpatchable> {
    Err(Unpatchable::Unknown(why))
}

/// `strip`: a replacement in a split index carries no path (the base entry's stays).
fn encode_entry(out: &mut Vec<u8>, e: &Entry, strip: bool) {
    let path: &[u8] = if strip { &[] } else { &e.path };
    let s = &e.stat;
    for w in [
        s.ctime.secs,
        s.ctime.nsecs,
        s.mtime.secs,
        s.mtime.nsecs,
        s.dev,
        s.ino,
        e.mode,
        s.uid,
        s.gid,
        s.size,
    ] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(e.id.as_bytes());
    let flags = path.len().min(0xfff) as u16;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(path);
    // NUL-padded to a multiple of eight, at least one NUL.
    let len = entry_len(path.len());
    out.resize(out.len() + len - FIXED - path.len(), 0);
}

fn entry_len(path_len: usize) -> usize {
    (FIXED + path_len + 8) & !7
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("four bytes"))
}

/// Decodes one version-2 entry from `b`; returns it and its length. `None` for what atoll
/// does not write: extended flags, a stage, a path of 4,095 bytes or more.
fn decode_entry(b: &[u8], extended_ok: bool) -> Option<(Entry, usize)> {
    if b.len() < FIXED {
        return None;
    }
    let w = |i: usize| be32(&b[i * 4..]);
    let flags = u16::from_be_bytes([b[60], b[61]]);
    let name_len = (flags & 0xfff) as usize;
    if flags & 0x3000 != 0 || name_len == 0xfff || (flags & 0x4000 != 0 && !extended_ok) {
        return None;
    }
    let extra = if flags & 0x4000 != 0 { 2 } else { 0 };
    if extra != 0 && u16::from_be_bytes([*b.get(62)?, *b.get(63)?]) != 0 {
        return None;
    }
    let start = FIXED + extra;
    let len = (start + name_len + 8) & !7;
    if b.len() < len {
        return None;
    }
    let time = |s, n| gix::index::entry::stat::Time { secs: s, nsecs: n };
    let stat = Stat {
        ctime: time(w(0), w(1)),
        mtime: time(w(2), w(3)),
        dev: w(4),
        ino: w(5),
        uid: w(7),
        gid: w(8),
        size: w(9),
    };
    let entry = Entry {
        path: b[start..start + name_len].to_vec(),
        id: ObjectId::from_bytes_or_panic(&b[40..60]),
        mode: w(6),
        stat,
    };
    Some((entry, len))
}

fn header(count: usize) -> Vec<u8> {
    let mut out = b"DIRC".to_vec();
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(count as u32).to_be_bytes());
    out
}

fn sha1(bytes: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(bytes).digest().bytes()
}

/// Writes `bytes` to `path` through the temporary file `tmp` and a rename: never half a
/// file. (Like Git, no fsync: this guards against a killed process, not a power cut.)
fn replace_file(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// Writes the whole index: `entries` (sorted by path, as a tree walk yields them) become a
/// new shared base with its map, and `.git/index` a split index with nothing on top of it.
/// Older bases are removed once the index points at the new one.
pub(crate) fn write_whole(
    git_dir: &Path,
    entries: impl Iterator<Item = Entry>,
) -> std::io::Result<()> {
    let mut base = header(0);
    let mut map = Vec::new();
    let mut count = 0usize;
    for e in entries {
        if count.is_multiple_of(STRIDE) {
            map.extend_from_slice(&(count as u32).to_be_bytes());
            map.extend_from_slice(&(base.len() as u64).to_be_bytes());
            map.extend_from_slice(&(e.path.len() as u16).to_be_bytes());
            map.extend_from_slice(&e.path);
        }
        encode_entry(&mut base, &e, false);
        count += 1;
    }
    base[8..12].copy_from_slice(&(count as u32).to_be_bytes());
    let sum = sha1(&base);
    base.extend_from_slice(&sum);
    let hex = ObjectId::from_bytes_or_panic(&sum).to_string();
    let base_name = format!("sharedindex.{hex}");
    let tmp = git_dir.join("atoll-sharedindex.tmp");
    replace_file(&tmp, &git_dir.join(&base_name), &base)?;

    let mut map_file = MAP_MAGIC.to_vec();
    map_file.extend_from_slice(&sum);
    map_file.extend_from_slice(&(count as u32).to_be_bytes());
    map_file.extend_from_slice(&map);
    let tmp = git_dir.join("atoll-index-map.tmp");
    replace_file(&tmp, &git_dir.join(MAP_FILE), &map_file)?;

    write_split(git_dir, &sum, &[], &[], &[])?;
    for e in std::fs::read_dir(git_dir)?.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("sharedindex.") && name != base_name {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

/// Writes `.git/index` as a split index over the base `base_sum`: `deleted` base positions
/// (sorted), `replaced` base positions (sorted) with their new entries, and `added` entries
/// for paths the base does not have (sorted by path).
fn write_split(
    git_dir: &Path,
    base_sum: &[u8; 20],
    deleted: &[u32],
    replaced: &[(u32, &Entry)],
    added: &[&Entry],
) -> std::io::Result<()> {
    let mut out = header(replaced.len() + added.len());
    for (_, e) in replaced {
        encode_entry(&mut out, e, true);
    }
    for e in added {
        encode_entry(&mut out, e, false);
    }
    let mut link = base_sum.to_vec();
    ewah_encode(deleted, &mut link);
    let positions: Vec<u32> = replaced.iter().map(|(p, _)| *p).collect();
    ewah_encode(&positions, &mut link);
    out.extend_from_slice(b"link");
    out.extend_from_slice(&(link.len() as u32).to_be_bytes());
    out.extend_from_slice(&link);
    let sum = sha1(&out);
    out.extend_from_slice(&sum);
    // Git's lock file name: a Git command running now fails instead of losing our write.
    let lock = git_dir.join("index.lock");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)?;
    let written = f.write_all(&out);
    drop(f);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&lock);
        return Err(e);
    }
    std::fs::rename(&lock, git_dir.join("index"))
}

/// Serialises sorted, distinct bit positions as Git's EWAH bitmap.
fn ewah_encode(bits: &[u32], out: &mut Vec<u8>) {
    const MAX_LITERALS: u64 = (1 << 31) - 1;
    let mut words: Vec<u64> = vec![0];
    let mut rlw = 0usize;
    let (mut run, mut literals) = (0u64, 0u64);
    // The bitmap word right after the current marker's last literal.
    let mut next = 0u64;
    let mut i = 0;
    while i < bits.len() {
        let w = u64::from(bits[i]) / 64;
        let mut value = 0u64;
        while i < bits.len() && u64::from(bits[i]) / 64 == w {
            value |= 1 << (bits[i] % 64);
            i += 1;
        }
        if (w > next && literals > 0) || literals == MAX_LITERALS {
            words.push(0);
            rlw = words.len() - 1;
            (run, literals) = (0, 0);
        }
        run += w - next;
        literals += 1;
        words.push(value);
        words[rlw] = (run << 1) | (literals << 33);
        next = w + 1;
    }
    let bit_size = bits.last().map_or(0, |b| b + 1);
    out.extend_from_slice(&bit_size.to_be_bytes());
    out.extend_from_slice(&(words.len() as u32).to_be_bytes());
    for w in &words {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(&(rlw as u32).to_be_bytes());
}

/// Reads a Git EWAH bitmap from the front of `b`: its set bits (at most `limit` of them, all
/// below `limit`) and the bytes after it.
fn ewah_decode(b: &[u8], limit: u32) -> Option<(Vec<u32>, &[u8])> {
    let n = be32(b.get(4..8)?) as usize;
    let words_end = 8usize.checked_add(n.checked_mul(8)?)?;
    let words = b.get(8..words_end)?;
    let rest = b.get(words_end + 4..)?;
    let word = |i: usize| u64::from_be_bytes(words[i * 8..i * 8 + 8].try_into().expect("eight"));
    let mut bits = Vec::new();
    let (mut i, mut pos) = (0usize, 0u64);
    while i < n {
        let marker = word(i);
        let run = (marker >> 1) & 0xffff_ffff;
        let literals = (marker >> 33) as usize;
        if marker & 1 == 1 {
            for p in pos..pos + run * 64 {
                bits.push(u32::try_from(p).ok().filter(|p| *p < limit)?);
            }
        }
        pos += run * 64;
        if i + literals >= n {
            return None;
        }
        for j in 0..literals {
            let mut v = word(i + 1 + j);
            while v != 0 {
                let p = pos + u64::from(v.trailing_zeros());
                bits.push(u32::try_from(p).ok().filter(|p| *p < limit)?);
                v &= v - 1;
            }
            pos += 64;
        }
        i += 1 + literals;
    }
    Some((bits, rest))
}

/// The shared base and its map: finds entries by path without reading the whole base.
struct Base {
    file: std::fs::File,
    count: u32,
    /// (position, byte offset, path) of every `STRIDE`th entry.
    marks: Vec<(u32, u64, Vec<u8>)>,
}

impl Base {
    fn open(git_dir: &Path, sum: &[u8]) -> Result<Base, Unpatchable> {
        let map = match std::fs::read(git_dir.join(MAP_FILE)) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return unknown("no map"),
            Err(e) => return Err(e.into()),
        };
        let Some(rest) = map.strip_prefix(MAP_MAGIC) else {
            return unknown("not a map");
        };
        if rest.len() < 24 || &rest[..20] != sum {
            return unknown("the map is of another base");
        }
        let count = be32(&rest[20..24]);
        let mut marks = Vec::new();
        let mut b = &rest[24..];
        while !b.is_empty() {
            if b.len() < 14 {
                return unknown("truncated map");
            }
            let pos = be32(b);
            let off = u64::from_be_bytes(b[4..12].try_into().expect("eight"));
            let len = u16::from_be_bytes([b[12], b[13]]) as usize;
            let Some(path) = b.get(14..14 + len) else {
                return unknown("truncated map");
            };
            marks.push((pos, off, path.to_vec()));
            b = &b[14 + len..];
        }
        let hex = ObjectId::from_bytes_or_panic(sum).to_string();
        let file = match std::fs::File::open(git_dir.join(format!("sharedindex.{hex}"))) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return unknown("no base"),
            Err(e) => return Err(e.into()),
        };
        Ok(Base { file, count, marks })
    }

    /// Calls `f(position, entry)` for the base entries from the mark at or before `from`
    /// (a path) onwards, until `f` says stop.
    fn scan_from(
        &mut self,
        from: &[u8],
        mut f: impl FnMut(u32, &Entry) -> bool,
    ) -> Result<(), Unpatchable> {
        let m = self.marks.partition_point(|(_, _, p)| p.as_slice() < from);
        let Some((pos, off, _)) = self.marks.get(m.saturating_sub(1)) else {
            return Ok(());
        };
        self.scan(*pos, *off, |p, e| f(p, e))
    }

    fn scan(
        &mut self,
        mut pos: u32,
        off: u64,
        mut f: impl FnMut(u32, &Entry) -> bool,
    ) -> Result<(), Unpatchable> {
        self.file.seek(SeekFrom::Start(off))?;
        let mut buf = Vec::new();
        let mut at = 0usize;
        let mut chunk = vec![0u8; 64 * 1024];
        while pos < self.count {
            if buf.len() - at < FIXED + 4096 {
                buf.drain(..at);
                at = 0;
                while buf.len() < FIXED + 4096 {
                    let n = self.file.read(&mut chunk)?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
            let Some((e, len)) = decode_entry(&buf[at..], false) else {
                return unknown("a base entry atoll cannot read");
            };
            if !f(pos, &e) {
                break;
            }
            at += len;
            pos += 1;
        }
        Ok(())
    }
}

/// The split index `.git/index` as read: its base, the base positions it deletes, the
/// entries it adds.
struct Split {
    base_sum: [u8; 20],
    deleted: Vec<u32>,
    added: Vec<Entry>,
    /// Entries replacing base entries (new stat data or content, same path; the path is
    /// left empty), by base position.
    replaced: Vec<(u32, Entry)>,
}

/// Reads `.git/index` as a split index and opens its base (the base's size bounds the
/// bitmaps: a hostile run length cannot make them huge).
fn read_split(git_dir: &Path) -> Result<(Split, Base), Unpatchable> {
    let data = match std::fs::read(git_dir.join("index")) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return unknown("no index"),
        Err(e) => return Err(e.into()),
    };
    if data.len() < 32 || &data[..4] != b"DIRC" {
        return unknown("not an index");
    }
    let (body, sum) = data.split_at(data.len() - 20);
    if sha1(body) != sum {
        return unknown("index checksum");
    }
    let version = be32(&body[4..]);
    if version != 2 && version != 3 {
        return unknown("index version");
    }
    let count = be32(&body[8..]) as usize;
    let mut entries = Vec::with_capacity(count.min(body.len() / FIXED));
    let mut at = 12;
    for _ in 0..count {
        let Some((e, len)) = decode_entry(&body[at..], version == 3) else {
            return unknown("an entry atoll cannot read");
        };
        entries.push(e);
        at += len;
    }
    let mut link = None;
    while at < body.len() {
        if body.len() - at < 8 {
            return unknown("truncated extension");
        }
        let sig = &body[at..at + 4];
        let size = be32(&body[at + 4..]) as usize;
        let Some(ext) = body.get(at + 8..at + 8 + size) else {
            return unknown("truncated extension");
        };
        if sig == b"link" {
            link = Some(ext);
        } else if !sig[0].is_ascii_uppercase() {
            return unknown("a required extension atoll does not know");
        }
        at += 8 + size;
    }
    let Some(link) = link else {
        return unknown("not a split index");
    };
    if link.len() < 20 {
        return unknown("link extension");
    }
    let base_sum: [u8; 20] = link[..20].try_into().expect("twenty");
    let base = Base::open(git_dir, &base_sum)?;
    let (deleted, replace) = if link.len() == 20 {
        (Vec::new(), Vec::new())
    } else {
        let Some((deleted, rest)) = ewah_decode(&link[20..], base.count) else {
            return unknown("delete bitmap");
        };
        let Some((replace, rest)) = ewah_decode(rest, base.count) else {
            return unknown("replace bitmap");
        };
        if !rest.is_empty() {
            return unknown("link extension");
        }
        (deleted, replace)
    };
    if replace.len() > entries.len() {
        return unknown("replace bitmap");
    }
    let added = entries.split_off(replace.len());
    if entries.iter().any(|e| !e.path.is_empty()) || added.iter().any(|e| e.path.is_empty()) {
        return unknown("split entries");
    }
    let split = Split {
        base_sum,
        deleted,
        added,
        replaced: replace.into_iter().zip(entries).collect(),
    };
    Ok((split, base))
}

/// What an edit does to the index: paths removed (a key ending in `/` is a folder), then
/// files added.
pub(crate) struct IndexEdit<'a> {
    pub removed: Vec<&'a str>,
    pub added: Vec<Entry>,
}

/// `entries` (sorted by path) with `edit` applied, sorted by path.
pub(crate) fn apply_to(entries: impl Iterator<Item = Entry>, edit: IndexEdit<'_>) -> Vec<Entry> {
    let removed = Removed::new(&edit.removed);
    let new: HashSet<&[u8]> = edit.added.iter().map(|a| a.path.as_slice()).collect();
    let kept = entries
        .filter(|e| !removed.covers(&e.path) && !new.contains(e.path.as_slice()))
        .collect();
    let mut added = edit.added;
    added.sort_by(|a, b| a.path.cmp(&b.path));
    merge_sorted(kept, added)
}

/// An edit's removed paths (a key ending in `/` is a folder), looked up in time proportional
/// to a path's depth, not to the number of keys: a fleet-wide change removes thousands of
/// cluster folders.
struct Removed<'a> {
    folders: HashSet<&'a [u8]>,
    files: HashSet<&'a [u8]>,
}

impl<'a> Removed<'a> {
    fn new(keys: &[&'a str]) -> Removed<'a> {
        let mut r = Removed {
            folders: HashSet::new(),
            files: HashSet::new(),
        };
        for k in keys {
            match k.strip_suffix('/') {
                Some(folder) => r.folders.insert(folder.as_bytes()),
                None => r.files.insert(k.as_bytes()),
            };
        }
        r
    }

    /// Whether `path` is a removed file or lies in a removed folder.
    fn covers(&self, path: &[u8]) -> bool {
        self.files.contains(path)
            || path
                .iter()
                .enumerate()
                .any(|(i, b)| *b == b'/' && self.folders.contains(&path[..i]))
    }
}

/// Whether `path` is `key` or lies in it (a key ending in `/` is a folder).
fn under(path: &[u8], key: &str) -> bool {
    if let Some(folder) = key.strip_suffix('/') {
        path.strip_prefix(folder.as_bytes())
            .is_some_and(|r| r.first() == Some(&b'/'))
    } else {
        path == key.as_bytes()
    }
}

/// Applies `edit` to the split index by writing `.git/index` only. `Err(Unknown)` when the
/// index is not a split index over a base with its map, or when the changes since the base
/// grew past a fifth of it (then a fresh base is due): the caller writes the index whole.
pub(crate) fn patch(git_dir: &Path, edit: IndexEdit<'_>) -> Result<(), Unpatchable> {
    let (split, mut base) = read_split(git_dir)?;
    let limit = base.count;
    let mut deleted: BTreeSet<u32> = split.deleted.into_iter().collect();
    let mut replaced: BTreeMap<u32, Entry> = split.replaced.into_iter().collect();
    if deleted.last().is_some_and(|p| *p >= limit)
        || replaced.last_key_value().is_some_and(|(p, _)| *p >= limit)
        || replaced.keys().any(|p| deleted.contains(p))
    {
        return unknown("bitmaps beyond the base or overlapping");
    }
    let mut added: BTreeMap<Vec<u8>, Entry> = split
        .added
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect();
    let fresh_base_at = (limit as usize / 5).max(2048);
    if deleted.len() + replaced.len() + added.len() + edit.added.len() > fresh_base_at {
        // Past a fifth of the base whatever the edit removes: straight to a fresh base.
        return rebase(git_dir, &mut base, &deleted, replaced, added, edit);
    }
    // Everything an edited path shadows goes: its base entries and earlier additions. An
    // added file under a removed folder is covered by the folder.
    let removed = Removed::new(&edit.removed);
    let mut keys: Vec<String> = edit.removed.iter().map(|k| k.to_string()).collect();
    for e in &edit.added {
        if !removed.covers(&e.path) {
            keys.push(String::from_utf8_lossy(&e.path).into_owned());
        }
    }
    let mut in_base: HashMap<Vec<u8>, u32> = HashMap::new();
    for key in &keys {
        let last = key.as_bytes();
        let folder = key.ends_with('/');
        base.scan_from(key.trim_end_matches('/').as_bytes(), |pos, e| {
            if under(&e.path, key) {
                deleted.insert(pos);
                replaced.remove(&pos);
                in_base.insert(e.path.clone(), pos);
            }
            e.path.as_slice() <= last || (folder && e.path.starts_with(last))
        })?;
    }
    // (An earlier addition at a path the edit adds again is overwritten below.)
    added.retain(|p, _| !removed.covers(p));
    // A path the base has is a replacement (Git counts it as shared and keeps the base); a
    // new path is an addition.
    for e in edit.added {
        match in_base.get(&e.path) {
            Some(pos) => {
                deleted.remove(pos);
                replaced.insert(*pos, e);
            }
            None => {
                added.insert(e.path.clone(), e);
            }
        }
    }
    if deleted.len() + replaced.len() + added.len() > fresh_base_at {
        let no_edit = IndexEdit {
            removed: Vec::new(),
            added: Vec::new(),
        };
        return rebase(git_dir, &mut base, &deleted, replaced, added, no_edit);
    }
    let deleted: Vec<u32> = deleted.into_iter().collect();
    let replaced: Vec<(u32, &Entry)> = replaced.iter().map(|(p, e)| (*p, e)).collect();
    let added: Vec<&Entry> = added.values().collect();
    write_split(git_dir, &split.base_sum, &deleted, &replaced, &added)?;
    Ok(())
}

/// Writes a fresh base: the index as it stands (the base, less `deleted`, with `replaced`
/// and `added`) with `edit` applied. From the index rather than from the tree, so the stat
/// data Git refreshed stays and the next `git status` does not hash every file again.
fn rebase(
    git_dir: &Path,
    base: &mut Base,
    deleted: &BTreeSet<u32>,
    mut replaced: BTreeMap<u32, Entry>,
    added: BTreeMap<Vec<u8>, Entry>,
    edit: IndexEdit<'_>,
) -> Result<(), Unpatchable> {
    let mut kept = Vec::with_capacity(base.count as usize);
    base.scan(0, 12, |pos, e| {
        if let Some(r) = replaced.remove(&pos) {
            kept.push(Entry {
                path: e.path.clone(),
                ..r
            });
        } else if !deleted.contains(&pos) {
            kept.push(e.clone());
        }
        true
    })?;
    let current = merge_sorted(kept, added.into_values().collect());
    write_whole(git_dir, apply_to(current.into_iter(), edit).into_iter())?;
    Ok(())
}

/// Two path-sorted lists as one; where both hold a path, `b`'s entry wins.
fn merge_sorted(a: Vec<Entry>, b: Vec<Entry>) -> Vec<Entry> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.path == y.path => {
                a.next();
                false
            }
            (Some(x), Some(y)) => x.path < y.path,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewah_round_trips_through_gits_format() {
        for bits in [
            vec![],
            vec![0],
            vec![63, 64],
            vec![5, 70, 1000, 1001, 1_500_000],
            (0..300).collect::<Vec<u32>>(),
            (0..100).map(|i| i * 1000).collect(),
        ] {
            let mut out = Vec::new();
            ewah_encode(&bits, &mut out);
            out.extend_from_slice(b"rest");
            let (back, rest) = ewah_decode(&out, u32::MAX).expect("decodes");
            assert_eq!(back, bits);
            assert_eq!(rest, b"rest");
        }
    }

    #[test]
    fn removed_covers_what_under_says() {
        let keys = [
            "clusters/a/",
            "clusters/b/apps/",
            "clusters/c/x.yaml",
            "state/d/",
        ];
        let removed = Removed::new(&keys);
        for path in [
            "clusters/a/x.yaml",
            "clusters/a",
            "clusters/ab/x.yaml",
            "clusters/b/apps/web/d.yaml",
            "clusters/b/other.yaml",
            "clusters/c/x.yaml",
            "clusters/c/x.yaml.bak",
            "state/d/e/f",
            "state/dd",
        ] {
            let p = path.as_bytes();
            assert_eq!(
                removed.covers(p),
                keys.iter().any(|k| under(p, k)),
                "{path}"
            );
        }
    }

    #[test]
    fn ewah_refuses_bits_beyond_the_limit() {
        let mut out = Vec::new();
        ewah_encode(&[10, 99], &mut out);
        assert!(ewah_decode(&out, 99).is_none());
        assert!(ewah_decode(&out, 100).is_some());
        assert!(ewah_decode(&out[..out.len() - 9], 100).is_none());
        // A run of 2^32 - 1 words of ones: refused at the limit, not expanded.
        let mut hostile = Vec::new();
        hostile.extend_from_slice(&0u32.to_be_bytes());
        hostile.extend_from_slice(&1u32.to_be_bytes());
        hostile.extend_from_slice(&((0xffff_ffffu64 << 1) | 1).to_be_bytes());
        hostile.extend_from_slice(&0u32.to_be_bytes());
        assert!(ewah_decode(&hostile, 1000).is_none());
    }
}
