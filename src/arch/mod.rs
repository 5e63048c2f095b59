//! Architecture bindings. Oxen runs only on 32-bit x86 with PAE.

pub mod x86;
