//! Writes many objects at once as one pack (`objects/pack/pack-*.{pack,idx}`, format version
//! 2) instead of one loose file each: at fleet scale, creating hundreds of thousands of small
//! files costs more than everything else a render does.

use gix::ObjectId;
use gix::objs::Kind;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// Objects waiting to be written, each once.
#[derive(Default)]
pub(crate) struct Pack {
    objects: Vec<(ObjectId, Kind, Vec<u8>)>,
    ids: std::collections::HashSet<ObjectId>,
}

impl Pack {
    /// Adds an object whose id the caller computed; a repeated id is ignored.
    pub fn add(&mut self, id: ObjectId, kind: Kind, data: Vec<u8>) {
        if self.ids.insert(id) {
            self.objects.push((id, kind, data));
        }
    }

    /// Writes the pack and its index into `objects_dir/pack`. Both are written under temporary
    /// names and renamed, index last, so a reader never sees half a pack.
    pub fn write(self, objects_dir: &Path) -> std::io::Result<()> {
        if self.objects.is_empty() {
            return Ok(());
        }
        // Entries: type-and-size header, then zlib data; compressed in parallel.
        let entries: Vec<(ObjectId, Vec<u8>)> = self
            .objects
            .into_par_iter()
            .map(|(id, kind, data)| {
                let mut e = entry_header(kind, data.len());
                let mut z = flate2::write::ZlibEncoder::new(e, flate2::Compression::fast());
                z.write_all(&data).expect("in-memory");
                e = z.finish().expect("in-memory");
                (id, e)
            })
            .collect();
        let dir = objects_dir.join("pack");
        std::fs::create_dir_all(&dir)?;
        let mut pack = Vec::with_capacity(entries.iter().map(|(_, e)| e.len()).sum::<usize>() + 32);
        pack.extend_from_slice(b"PACK");
        pack.extend_from_slice(&2u32.to_be_bytes());
        pack.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        let mut index: Vec<(ObjectId, u32, u64)> = Vec::with_capacity(entries.len());
        for (id, e) in &entries {
            index.push((*id, crc32fast::hash(e), pack.len() as u64));
            pack.extend_from_slice(e);
        }
        drop(entries);
        let pack_sum = sha1(&pack);
        pack.extend_from_slice(&pack_sum);

        index.sort_by_key(|e| e.0);
        let mut idx = Vec::with_capacity(8 + 1024 + index.len() * 28 + 40);
        idx.extend_from_slice(&[0xff, b't', b'O', b'c']);
        idx.extend_from_slice(&2u32.to_be_bytes());
        let mut fanout = [0u32; 256];
        for (id, _, _) in &index {
            fanout[id.as_bytes()[0] as usize] += 1;
        }
        let mut total = 0;
        for f in fanout {
            total += f;
            idx.extend_from_slice(&total.to_be_bytes());
        }
        for (id, _, _) in &index {
            idx.extend_from_slice(id.as_bytes());
        }
        for (_, crc, _) in &index {
            idx.extend_from_slice(&crc.to_be_bytes());
        }
        // Offsets past 2 GiB go to a table of 64-bit offsets, as the format says.
        let mut large = Vec::new();
        for (_, _, off) in &index {
            if *off < 0x8000_0000 {
                idx.extend_from_slice(&(*off as u32).to_be_bytes());
            } else {
                idx.extend_from_slice(&(0x8000_0000u32 | large.len() as u32).to_be_bytes());
                large.push(*off);
            }
        }
        for off in large {
            idx.extend_from_slice(&off.to_be_bytes());
        }
        idx.extend_from_slice(&pack_sum);
        let idx_sum = sha1(&idx);
        idx.extend_from_slice(&idx_sum);

        let name: String = pack_sum.iter().map(|b| format!("{b:02x}")).collect();
        let final_pack = dir.join(format!("pack-{name}.pack"));
        let final_idx = dir.join(format!("pack-{name}.idx"));
        let tmp_pack = dir.join(format!("tmp-pack-{name}"));
        let tmp_idx = dir.join(format!("tmp-idx-{name}"));
        std::fs::write(&tmp_pack, &pack)?;
        std::fs::write(&tmp_idx, &idx)?;
        std::fs::rename(&tmp_pack, &final_pack)?;
        std::fs::rename(&tmp_idx, &final_idx)?;
        Ok(())
    }
}

fn sha1(data: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(data).digest().bytes()
}

/// The object header of a pack entry: type in bits 4–6 of the first byte, size in 4 + 7n
/// bits, little end first.
fn entry_header(kind: Kind, size: usize) -> Vec<u8> {
    let ty: u8 = match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    };
    let mut out = Vec::with_capacity(8);
    let mut size = size as u64;
    let mut byte = (ty << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
    out
}
