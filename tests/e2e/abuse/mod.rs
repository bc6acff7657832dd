//! What a hostile sender would try, against the real daemon: one module per surface.
//! Each test reproduces an attack from the security review (issue 14) or the robustness
//! review (issue 21) and asserts the daemon refuses it and leaves no trace.

mod channels;
mod mail;
mod privacy;
mod tickets;
mod web;
