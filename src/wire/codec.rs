//! Placeholder: the wire helper writes this file.
