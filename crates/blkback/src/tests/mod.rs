//! Host tests: fakes for the grant table and the disk, a front end on the same
//! page, and every hostile case of issue 12's "Bad input".

mod fakes;
mod hostile;
mod roundtrip;
mod states;
