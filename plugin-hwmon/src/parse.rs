//! Pure parsing of hwmon file names and contents, without I/O.

/// What a sensor file measures, with its raw unit (the hwmon sysfs ABI's).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `temp*_input`, millidegrees Celsius.
    Temp,
    /// `fan*_input`, revolutions per minute.
    Fan,
    /// `power*_input` or `power*_average`, microwatts.
    Power,
    /// `energy*_input`, microjoules, a counter.
    Energy,
    /// `curr*_input`, milliamperes.
    Curr,
    /// `in*_input`, millivolts.
    In,
}

impl Kind {
    /// The file name prefix (`temp` of `temp1_input`).
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Temp => "temp",
            Kind::Fan => "fan",
            Kind::Power => "power",
            Kind::Energy => "energy",
            Kind::Curr => "curr",
            Kind::In => "in",
        }
    }
}

/// A sensor value file, from its name: `temp3_input` is `(Temp, 3, false)`; the bool says
/// whether it is `power*_average` rather than an `_input`.
pub fn classify(file_name: &str) -> Option<(Kind, u32, bool)> {
    let (stem, average) = if let Some(stem) = file_name.strip_suffix("_input") {
        (stem, false)
    } else {
        (file_name.strip_suffix("_average")?, true)
    };
    let digits = stem.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let prefix = &stem[..stem.len() - digits.len()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index = digits.parse().ok()?;
    let kind = match prefix {
        "temp" => Kind::Temp,
        "fan" => Kind::Fan,
        "power" => Kind::Power,
        "energy" => Kind::Energy,
        "curr" => Kind::Curr,
        "in" => Kind::In,
        _ => return None,
    };
    (!average || kind == Kind::Power).then_some((kind, index, average))
}

/// A sysfs integer (`45000\n`, `-5000`), surrounding whitespace allowed.
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.is_empty() || text.starts_with('+') {
        return None;
    }
    text.parse().ok()
}

/// Grace's `power1_oem_info`, `Module Power Socket 0`: the sensor (`Module`, `Grace`,
/// `CPU`, `SysIO`) and the socket.
pub fn parse_oem_info(text: &str) -> Option<(String, u32)> {
    let mut words = text.split_whitespace();
    let kind = words.next()?;
    let (power, socket_word, socket) = (words.next()?, words.next()?, words.next()?);
    if power != "Power" || socket_word != "Socket" || words.next().is_some() {
        return None;
    }
    Some((kind.to_owned(), socket.parse().ok()?))
}

/// Whether `name` is a PCI address, `0000:03:00.0`.
pub fn is_pci_address(name: &str) -> bool {
    let b = name.as_bytes();
    let hex = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_hexdigit);
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && hex(0..4)
        && hex(5..7)
        && hex(8..10)
        && b[11].is_ascii_digit()
}

/// The CPU package a CPU temperature chip belongs to, from its name and its device's
/// name: `coretemp.N` (Intel, N is the package id); k10temp's PCI function on device
/// 0x18 + the node (AMD, one node per package on these parts, as lm-sensors assumes).
pub fn cpu_package(chip: &str, device: &str) -> Option<u32> {
    match chip {
        "coretemp" => device.strip_prefix("coretemp.")?.parse().ok(),
        "k10temp" | "zenpower" if is_pci_address(device) => {
            let slot = u32::from_str_radix(&device[8..10], 16).ok()?;
            (0x18..0x20).contains(&slot).then(|| slot - 0x18)
        }
        _ => None,
    }
}

/// One DRM client of amdgpu, from a `/proc/PID/fdinfo/FD` file (kernel 5.19 and later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrmClient<'a> {
    /// `drm-pdev`: the GPU's PCI address.
    pub pdev: &'a str,
    /// `drm-client-id`: the same for every fd of one open of the device.
    pub client_id: u64,
    /// The sum of `drm-engine-*`, nanoseconds the client kept the GPU's engines busy.
    pub engine_ns: u64,
}

/// Parses an fdinfo file; `None` unless it is an amdgpu DRM client that tells its engine
/// time (other drivers, other files, older kernels).
pub fn parse_fdinfo(text: &str) -> Option<DrmClient<'_>> {
    let (mut amdgpu, mut pdev, mut client_id, mut engine_ns) = (false, None, None, None::<u64>);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "drm-driver" => amdgpu = value == "amdgpu",
            "drm-pdev" => pdev = Some(value),
            "drm-client-id" => client_id = value.parse().ok(),
            _ if key.starts_with("drm-engine-") && !key.starts_with("drm-engine-capacity-") => {
                let ns: u64 = value.strip_suffix(" ns")?.trim().parse().ok()?;
                engine_ns = Some(engine_ns.unwrap_or(0).saturating_add(ns));
            }
            _ => {}
        }
    }
    amdgpu.then_some(())?;
    Some(DrmClient {
        pdev: pdev?,
        client_id: client_id?,
        engine_ns: engine_ns?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(classify("temp3_input"), Some((Kind::Temp, 3, false)));
        assert_eq!(classify("power1_average"), Some((Kind::Power, 1, true)));
        assert_eq!(classify("in0_input"), Some((Kind::In, 0, false)));
        assert_eq!(classify("energy1_input"), Some((Kind::Energy, 1, false)));
        for other in [
            "temp1_label",
            "temp_input",
            "temp1x_input",
            "pwm1",
            "name",
            "temp1_average",
            "intrusion0_input",
            "power1_average_interval",
            "_input",
        ] {
            assert_eq!(classify(other), None, "{other}");
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int(b"45000\n"), Some(45000));
        assert_eq!(parse_int(b"-5000\n"), Some(-5000));
        for bad in [&b""[..], b"\n", b"abc", b"12 34", b"+5", b"1.5", b"\xff"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn grace_oem_info() {
        assert_eq!(
            parse_oem_info("Module Power Socket 0\n"),
            Some(("Module".into(), 0))
        );
        assert_eq!(
            parse_oem_info("SysIO Power Socket 3"),
            Some(("SysIO".into(), 3))
        );
        assert_eq!(parse_oem_info("Grace Power 3"), None);
        assert_eq!(parse_oem_info("CPU Power Socket x"), None);
    }

    #[test]
    fn packages() {
        assert_eq!(cpu_package("coretemp", "coretemp.1"), Some(1));
        assert_eq!(cpu_package("k10temp", "0000:00:18.3"), Some(0));
        assert_eq!(cpu_package("k10temp", "0000:00:19.3"), Some(1));
        assert_eq!(cpu_package("k10temp", "0000:00:01.3"), None);
        assert_eq!(cpu_package("nvme", "nvme0"), None);
        assert!(is_pci_address("0000:03:00.0") && !is_pci_address("nvme0"));
    }

    #[test]
    fn amdgpu_fdinfo() {
        let text = "pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t1063\ndrm-driver:\tamdgpu\n\
            drm-client-id:\t18\ndrm-pdev:\t0000:03:00.0\npasid:\t32783\n\
            drm-memory-vram:\t24 KiB\ndrm-engine-gfx:\t6245418 ns\n\
            drm-engine-compute:\t1000 ns\ndrm-engine-dec:\t0 ns\n";
        let client = parse_fdinfo(text).unwrap();
        assert_eq!(
            (client.pdev, client.client_id, client.engine_ns),
            ("0000:03:00.0", 18, 6246418)
        );
        assert_eq!(parse_fdinfo(&text.replace("amdgpu", "i915")), None);
        assert_eq!(parse_fdinfo("pos:\t0\nflags:\t02\n"), None);
        // amdgpu before engine times (kernel 5.14 to 5.18): no figure.
        assert_eq!(
            parse_fdinfo("drm-driver:\tamdgpu\ndrm-client-id:\t3\ndrm-pdev:\t0000:03:00.0\n"),
            None
        );
    }
}
