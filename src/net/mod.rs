//! Placeholder: the net helper writes this module.
