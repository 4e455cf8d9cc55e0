//! InfluxDB output (work in progress).
