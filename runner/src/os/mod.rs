//! What runbench reads from and asks of the operating system: /proc ([`procfs`]), descriptors,
//! CPU pinning and clocks ([`sys`]), network namespaces ([`netns`]) and signals ([`interrupt`]).

pub mod interrupt;
pub mod netns;
pub mod procfs;
pub mod sys;
