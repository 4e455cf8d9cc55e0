//! Energy attribution.
