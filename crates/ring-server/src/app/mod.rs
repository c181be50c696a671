//! What users of the library see: the handler API and the router.

/// Requests, responses, bodies, and the `Handler` trait.
pub mod handler;
/// Method + path pattern routing in the manner of Go 1.22's `ServeMux`.
pub mod router;
/// The `Content-Type` lines of ringd's own responses, rendered once.
pub(crate) mod type_lines;
