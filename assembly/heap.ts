// Key storage in linear memory. Keys are long-lived (they live as long as the JWKS holds them), so
// each kind of key gets fixed-size slots, and a released slot goes on a free list that the next
// import of that kind takes first: rotating keys reuses the space of retired ones, and memory is
// bounded by the most keys ever live at once. Nothing here is managed by the AssemblyScript runtime.

const PAGE: usize = 65536

let heapTop: usize = 0

/** Fresh space at the top of the heap; slots start on 64-byte lines (a table entry is one line). */
function bump(size: usize): usize {
  if (heapTop == 0) heapTop = (__heap_base + 63) & ~<usize>63
  const start = heapTop
  const end = start + ((size + 63) & ~<usize>63)
  const have = <usize>memory.size() * PAGE
  if (end > have) {
    const pages = <i32>((end - have + PAGE - 1) / PAGE)
    if (memory.grow(pages) < 0) return 0
  }
  heapTop = end
  return start
}

// One free list per kind of key (no managed objects: with the stub runtime they would sit where
// bump() allocates). The first word of a free slot links to the next.
const FREE_HEADS: usize = memory.data(16, 16)

export function slotAlloc(kind: usize, size: usize): usize {
  const head = load<usize>(FREE_HEADS + (kind << 2))
  if (head != 0) {
    store<usize>(FREE_HEADS + (kind << 2), load<usize>(head))
    return head
  }
  return bump(size)
}

export function slotFree(kind: usize, slot: usize): void {
  store<usize>(slot, load<usize>(FREE_HEADS + (kind << 2)))
  store<usize>(FREE_HEADS + (kind << 2), slot)
}
