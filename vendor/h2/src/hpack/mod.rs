mod decoder;
mod encoder;
pub(crate) mod header;
pub(crate) mod huffman;
mod table;

#[cfg(test)]
mod test;

// ringd patch: `NeedMore` is no longer used outside the decoder (see `Header::new`).
pub use self::decoder::{Decoder, DecoderError};
pub use self::encoder::Encoder;
pub use self::header::{BytesStr, Header};
