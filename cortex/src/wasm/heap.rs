//! The allocator's bookkeeping, kept on the host: a two-level segregated fit
//! (TLSF) allocator over guest offsets.
//!
//! Every block, used or free, is a record in a slab on the host; the guest's
//! memory holds only the bytes handed out, so nothing the guest writes can
//! corrupt the allocator. Blocks know their physical neighbours, so a freed
//! block merges with free neighbours in O(1); free blocks sit in lists by
//! size class with two bitmaps over them, so finding a fit is O(1) too.

use super::error::WasmError;

/// Every block starts and ends on this many bytes.
pub(crate) const GRANULE: u32 = 8;
/// Second-level classes per power of two.
const SL_BITS: u32 = 4;
const SL_COUNT: usize = 1 << SL_BITS;
/// Sizes below this are in the linear first class (`fl` 0).
const SMALL: u64 = (SL_COUNT as u64) * GRANULE as u64;
/// Enough first-level classes for sizes up to 4 GiB.
const FL_COUNT: usize = 27;
const NONE: u32 = u32::MAX;

/// A buffer in a guest's linear memory, handed out by a
/// [`MemoryManager`](super::MemoryManager) or a [`WasmInstance`](super::WasmInstance).
///
/// It is only a receipt: reading and writing go through the manager, which
/// checks every access against this allocation. Only the manager makes
/// them, so a pointer is always one it gave out; after [`free`](super::MemoryManager::free)
/// it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestPtr {
    offset: u32,
    len: u32,
    slot: u32,
    generation: u32,
    owner: u32,
}

impl GuestPtr {
    /// Offset of the buffer in the guest's memory (never 0, even for an
    /// empty allocation).
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// Length asked for.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the allocation holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `[offset, offset + len)` lies within this allocation.
    pub(crate) fn contains(&self, offset: u32, len: u32) -> bool {
        offset >= self.offset
            && u64::from(offset) + u64::from(len) <= u64::from(self.offset) + u64::from(self.len)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Used,
    /// A slab slot with no block (kept on the vacant chain).
    Vacant,
}

#[derive(Debug, Clone, Copy)]
struct Block {
    offset: u32,
    size: u32,
    prev_phys: u32,
    next_phys: u32,
    /// Free list links for free blocks; `next_free` chains vacant slots.
    prev_free: u32,
    next_free: u32,
    /// Bumped when the block is freed, so older pointers are refused.
    generation: u32,
    state: State,
}

impl Block {
    /// A free block between these physical neighbours, in no free list yet.
    fn free(offset: u32, size: u32, prev_phys: u32, next_phys: u32) -> Self {
        Block {
            offset,
            size,
            prev_phys,
            next_phys,
            prev_free: NONE,
            next_free: NONE,
            generation: 0,
            state: State::Free,
        }
    }
}

/// Counts kept as the heap works; read through `HeapStats`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) capacity: u64,
    pub(crate) allocated: u64,
    pub(crate) peak: u64,
    pub(crate) allocs: u64,
    pub(crate) frees: u64,
    pub(crate) live: u64,
}

/// The allocator over `[start, end)` ranges of a guest's memory.
#[derive(Debug)]
pub(crate) struct Heap {
    owner: u32,
    /// Nothing below this is ever handed out (the guest's reserved start),
    /// whatever regions are added later.
    floor: u64,
    blocks: Vec<Block>,
    vacant: u32,
    /// The block with the highest offset.
    tail: u32,
    fl_bitmap: u32,
    sl_bitmap: [u16; FL_COUNT],
    heads: Box<[[u32; SL_COUNT]; FL_COUNT]>,
    pub(crate) counts: Counts,
}

/// Bytes an allocation takes from the heap: at least one granule, rounded up.
fn block_size(size: u32) -> Option<u32> {
    let rounded = u64::from(size.max(1)).div_ceil(u64::from(GRANULE)) * u64::from(GRANULE);
    u32::try_from(rounded).ok()
}

/// The class a block of `size` bytes is listed in.
fn mapping_insert(size: u64) -> (usize, usize) {
    if size < SMALL {
        (0, (size / u64::from(GRANULE)) as usize)
    } else {
        let log2 = 63 - size.leading_zeros();
        let sl = (size >> (log2 - SL_BITS)) as usize & (SL_COUNT - 1);
        let fl = (log2 - (SMALL.trailing_zeros()) + 1) as usize;
        (fl, sl)
    }
}

/// The first class whose every block holds `size` bytes.
fn mapping_search(size: u64) -> (usize, usize) {
    if size < SMALL {
        mapping_insert(size)
    } else {
        let log2 = 63 - size.leading_zeros();
        mapping_insert(size + (1u64 << (log2 - SL_BITS)) - 1)
    }
}

impl Heap {
    pub(crate) fn new(owner: u32, floor: u64) -> Self {
        Heap {
            owner,
            floor,
            blocks: Vec::new(),
            vacant: NONE,
            tail: NONE,
            fl_bitmap: 0,
            sl_bitmap: [0; FL_COUNT],
            heads: Box::new([[NONE; SL_COUNT]; FL_COUNT]),
            counts: Counts::default(),
        }
    }

    /// Hands `[start, end)` to the heap (rounded inwards to granules). Merges
    /// with a free tail that ends at `start`.
    pub(crate) fn add_region(&mut self, start: u64, end: u64) {
        let g = u64::from(GRANULE);
        let start = start.max(self.floor).div_ceil(g) * g;
        let end = (end / g) * g;
        if end <= start || start == 0 || end > 1 << 32 {
            return;
        }
        self.counts.capacity += end - start;
        if self.tail != NONE {
            let t = self.blocks[self.tail as usize];
            if t.state == State::Free && u64::from(t.offset) + u64::from(t.size) == start {
                self.unlink(self.tail);
                self.blocks[self.tail as usize].size += (end - start) as u32;
                self.link(self.tail);
                return;
            }
        }
        let idx = self.new_slot(Block::free(
            start as u32,
            (end - start) as u32,
            self.tail,
            NONE,
        ));
        if self.tail != NONE {
            self.blocks[self.tail as usize].next_phys = idx;
        }
        self.tail = idx;
        self.link(idx);
    }

    /// Bytes that must be added at `memory_end` for `size`/`align` to fit
    /// for sure, counting a free tail that reaches `memory_end`.
    pub(crate) fn shortfall(&self, size: u32, align: u32, memory_end: u64) -> u64 {
        let need = Self::search_size(size, align).unwrap_or(u64::MAX);
        let mut have = 0;
        if self.tail != NONE {
            let t = self.blocks[self.tail as usize];
            if t.state == State::Free && u64::from(t.offset) + u64::from(t.size) == memory_end {
                have = u64::from(t.size);
            }
        }
        // The tail may start unaligned: asking for the slack as well covers
        // it. Memory below the floor does not count.
        need.saturating_sub(have).max(1) + self.floor.saturating_sub(memory_end)
    }

    /// The size of a new free block that a later `alloc(size, align)` is
    /// sure to find (the search rounds up to the next size class).
    pub(crate) fn region_for(size: u32, align: u32) -> u64 {
        let need = Self::search_size(size, align).unwrap_or(u64::MAX);
        if need < SMALL {
            return need;
        }
        let log2 = 63 - need.leading_zeros();
        need.saturating_add(1u64 << (log2 - SL_BITS))
    }

    fn search_size(size: u32, align: u32) -> Option<u64> {
        let size = u64::from(block_size(size)?);
        Some(if align > GRANULE {
            size + u64::from(align) - u64::from(GRANULE)
        } else {
            size
        })
    }

    /// A block of at least `size` bytes at a multiple of `align` (a power
    /// of two, checked by the caller), or `None` when nothing fits.
    pub(crate) fn alloc(&mut self, size: u32, align: u32) -> Option<GuestPtr> {
        let bsize = block_size(size)?;
        let search = Self::search_size(size, align)?;
        let mut idx = self.find(search)?;
        self.unlink(idx);
        if align > GRANULE {
            let offset = self.blocks[idx as usize].offset;
            let aligned = offset.next_multiple_of(align);
            if aligned != offset {
                // The front padding stays free: its neighbour before is used
                // (free blocks never touch), so it needs no merging.
                let rest = self.split(idx, aligned - offset);
                self.link(idx);
                idx = rest;
            }
        }
        if self.blocks[idx as usize].size - bsize >= GRANULE {
            let rest = self.split(idx, bsize);
            self.link(rest);
        }
        let b = &mut self.blocks[idx as usize];
        b.state = State::Used;
        let (offset, generation, taken) = (b.offset, b.generation, b.size);
        let c = &mut self.counts;
        c.allocated += u64::from(taken);
        c.peak = c.peak.max(c.allocated);
        c.allocs += 1;
        c.live += 1;
        Some(GuestPtr {
            offset,
            len: size,
            slot: idx,
            generation,
            owner: self.owner,
        })
    }

    /// Checks that `ptr` is a live allocation of this heap.
    #[inline]
    pub(crate) fn check(&self, ptr: &GuestPtr) -> Result<(), WasmError> {
        if ptr.owner == self.owner {
            if let Some(b) = self.blocks.get(ptr.slot as usize) {
                if b.generation == ptr.generation && b.state == State::Used {
                    return Ok(());
                }
                if b.generation > ptr.generation {
                    return Err(WasmError::AlreadyFreed { offset: ptr.offset });
                }
            }
        }
        Err(WasmError::UnknownPointer { offset: ptr.offset })
    }

    pub(crate) fn free(&mut self, ptr: &GuestPtr) -> Result<(), WasmError> {
        self.check(ptr)?;
        let mut idx = ptr.slot;
        let b = &mut self.blocks[idx as usize];
        b.state = State::Free;
        b.generation = b.generation.wrapping_add(1);
        let c = &mut self.counts;
        c.allocated -= u64::from(b.size);
        c.frees += 1;
        c.live -= 1;
        let (prev, next) = (b.prev_phys, b.next_phys);
        if prev != NONE && self.touches_free(prev, idx) {
            self.unlink(prev);
            self.absorb(prev, idx);
            idx = prev;
        }
        if next != NONE && self.touches_free(idx, next) {
            self.unlink(next);
            self.absorb(idx, next);
        }
        self.link(idx);
        Ok(())
    }

    /// Whether `a` and `b` (physical neighbours, `a` first) are adjacent
    /// and the one other than the block being freed is free.
    fn touches_free(&self, a: u32, b: u32) -> bool {
        let (x, y) = (self.blocks[a as usize], self.blocks[b as usize]);
        x.state == State::Free
            && y.state == State::Free
            && u64::from(x.offset) + u64::from(x.size) == u64::from(y.offset)
    }

    /// Merges `b` into `a` (its physical predecessor) and frees `b`'s slot.
    fn absorb(&mut self, a: u32, b: u32) {
        let bb = self.blocks[b as usize];
        let ab = &mut self.blocks[a as usize];
        ab.size += bb.size;
        ab.next_phys = bb.next_phys;
        if bb.next_phys != NONE {
            self.blocks[bb.next_phys as usize].prev_phys = a;
        }
        if self.tail == b {
            self.tail = a;
        }
        self.release_slot(b);
    }

    /// Splits `idx` at `at` bytes: `idx` keeps the front, the returned
    /// slot holds the rest. Neither is linked in a free list.
    fn split(&mut self, idx: u32, at: u32) -> u32 {
        let b = self.blocks[idx as usize];
        let rest = self.new_slot(Block::free(b.offset + at, b.size - at, idx, b.next_phys));
        if b.next_phys != NONE {
            self.blocks[b.next_phys as usize].prev_phys = rest;
        }
        let front = &mut self.blocks[idx as usize];
        front.size = at;
        front.next_phys = rest;
        if self.tail == idx {
            self.tail = rest;
        }
        rest
    }

    fn new_slot(&mut self, block: Block) -> u32 {
        if self.vacant != NONE {
            let idx = self.vacant;
            let slot = &mut self.blocks[idx as usize];
            self.vacant = slot.next_free;
            // A reused slot keeps counting generations, so pointers to the
            // block that had it before stay refused.
            let generation = slot.generation;
            *slot = Block {
                generation,
                ..block
            };
            idx
        } else {
            self.blocks.push(block);
            (self.blocks.len() - 1) as u32
        }
    }

    fn release_slot(&mut self, idx: u32) {
        let slot = &mut self.blocks[idx as usize];
        slot.state = State::Vacant;
        slot.generation = slot.generation.wrapping_add(1);
        slot.next_free = self.vacant;
        self.vacant = idx;
    }

    fn link(&mut self, idx: u32) {
        let (fl, sl) = mapping_insert(u64::from(self.blocks[idx as usize].size));
        let head = self.heads[fl][sl];
        let b = &mut self.blocks[idx as usize];
        b.prev_free = NONE;
        b.next_free = head;
        if head != NONE {
            self.blocks[head as usize].prev_free = idx;
        }
        self.heads[fl][sl] = idx;
        self.fl_bitmap |= 1 << fl;
        self.sl_bitmap[fl] |= 1 << sl;
    }

    fn unlink(&mut self, idx: u32) {
        let b = self.blocks[idx as usize];
        if b.prev_free != NONE {
            self.blocks[b.prev_free as usize].next_free = b.next_free;
        } else {
            let (fl, sl) = mapping_insert(u64::from(b.size));
            self.heads[fl][sl] = b.next_free;
            if b.next_free == NONE {
                self.sl_bitmap[fl] &= !(1 << sl);
                if self.sl_bitmap[fl] == 0 {
                    self.fl_bitmap &= !(1 << fl);
                }
            }
        }
        if b.next_free != NONE {
            self.blocks[b.next_free as usize].prev_free = b.prev_free;
        }
    }

    /// A free block of at least `size` bytes.
    fn find(&self, size: u64) -> Option<u32> {
        if size > u64::from(u32::MAX) {
            return None;
        }
        let (mut fl, sl) = mapping_search(size);
        if fl >= FL_COUNT {
            return None;
        }
        let mut sl_map = u32::from(self.sl_bitmap[fl]) & (u32::MAX << sl);
        if sl_map == 0 {
            let fl_map = self.fl_bitmap & u32::MAX.checked_shl(fl as u32 + 1).unwrap_or(0);
            if fl_map == 0 {
                return None;
            }
            fl = fl_map.trailing_zeros() as usize;
            sl_map = u32::from(self.sl_bitmap[fl]);
        }
        let head = self.heads[fl][sl_map.trailing_zeros() as usize];
        (head != NONE).then_some(head)
    }

    /// The largest free block and the number of free blocks.
    pub(crate) fn free_blocks(&self) -> (u64, u64) {
        let mut largest = 0u64;
        let mut count = 0u64;
        for b in &self.blocks {
            if b.state == State::Free {
                largest = largest.max(u64::from(b.size));
                count += 1;
            }
        }
        (largest, count)
    }

    /// Checks every invariant; for tests.
    #[cfg(test)]
    fn validate(&self) {
        let mut idx = self.first();
        let mut prev_free = false;
        let mut prev = NONE;
        let mut used = 0u64;
        while idx != NONE {
            let b = self.blocks[idx as usize];
            assert_eq!(b.prev_phys, prev);
            assert_eq!(b.offset % GRANULE, 0);
            assert_eq!(b.size % GRANULE, 0);
            assert!(b.size > 0);
            if prev != NONE {
                let p = self.blocks[prev as usize];
                assert!(p.offset + p.size <= b.offset, "blocks overlap");
                if p.offset + p.size == b.offset {
                    assert!(!(prev_free && b.state == State::Free), "free neighbours");
                }
            }
            if b.state == State::Used {
                used += u64::from(b.size);
            }
            prev_free = b.state == State::Free;
            prev = idx;
            idx = b.next_phys;
        }
        assert_eq!(prev, self.tail);
        assert_eq!(used, self.counts.allocated);
    }

    #[cfg(test)]
    fn first(&self) -> u32 {
        let mut idx = self.tail;
        while idx != NONE && self.blocks[idx as usize].prev_phys != NONE {
            idx = self.blocks[idx as usize].prev_phys;
        }
        idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_hold_what_is_searched() {
        for size in (8..100_000u64).step_by(8) {
            let (fl, sl) = mapping_search(size);
            // Every block listed in (fl, sl) is at least `size`.
            let smallest = (8..=size * 2)
                .step_by(8)
                .find(|&s| mapping_insert(s) == (fl, sl))
                .unwrap_or(u64::MAX);
            assert!(
                smallest >= size,
                "size {size}: class {fl},{sl} holds {smallest}"
            );
        }
    }

    #[test]
    fn random_sequences_keep_the_invariants() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut heap = Heap::new(1, 0);
        heap.add_region(1024, 1 << 20);
        let mut live: Vec<GuestPtr> = Vec::new();
        for _ in 0..20_000 {
            if live.is_empty() || rng.u8(..) < 140 {
                let size = rng.u32(0..4000);
                let align = 1 << rng.u32(0..9);
                if let Some(p) = heap.alloc(size, align) {
                    assert_eq!(p.offset() % align, 0);
                    live.push(p);
                }
            } else {
                let p = live.swap_remove(rng.usize(..live.len()));
                heap.free(&p).unwrap();
                assert!(matches!(heap.free(&p), Err(WasmError::AlreadyFreed { .. })));
            }
            heap.validate();
        }
        for p in live.drain(..) {
            heap.free(&p).unwrap();
        }
        heap.validate();
        assert_eq!(heap.free_blocks(), ((1 << 20) - 1024, 1));
    }
}
