//! Memory management: Oxen's virtual layout, the map cache, the machine frame
//! allocator, the frame table and the heap.

pub mod frame_table;
pub mod frames;
pub mod heap;
pub mod hvmap;
pub mod layout;
pub mod mapcache;
