//! A line-protocol parser written from the documented grammar, to check what the plugin
//! writes: `measurement[,tag=value...] field=value[,field=value...] timestamp`.
//!
//! `modern`: InfluxDB 2/3 rules (`\\` is one backslash). Otherwise InfluxDB 1.x rules: a
//! backslash hides the next byte from the scanner, and is removed only before `,`, `=`,
//! space (and `"` in strings).

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    UInt(u64),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, Value)>,
    pub timestamp: u64,
}

struct Cursor<'a> {
    s: &'a [char],
    i: usize,
    modern: bool,
}

impl Cursor<'_> {
    /// Reads an unquoted token up to one of `stops`: the scanner skips the byte after a
    /// backslash; then `\\X` becomes `X` for X in `specials` (and `\\\\` in modern rules).
    fn token(&mut self, stops: &[char], specials: &[char]) -> Result<String, String> {
        let mut raw = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            if c == '\\' {
                let next = *self.s.get(self.i + 1).ok_or("backslash at the end")?;
                raw.extend([c, next]);
                self.i += 2;
                continue;
            }
            if stops.contains(&c) {
                break;
            }
            if c == '\n' {
                return Err(format!("raw line break at {}", self.i));
            }
            raw.push(c);
            self.i += 1;
        }
        let mut out = String::new();
        let mut j = 0;
        while j < raw.len() {
            let escaped = raw[j] == '\\'
                && raw
                    .get(j + 1)
                    .is_some_and(|n| specials.contains(n) || (self.modern && *n == '\\'));
            if escaped {
                out.push(raw[j + 1]);
                j += 2;
            } else {
                out.push(raw[j]);
                j += 1;
            }
        }
        Ok(out)
    }

    fn eat(&mut self, c: char) -> bool {
        let ok = self.s.get(self.i) == Some(&c);
        self.i += usize::from(ok);
        ok
    }

    fn string(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.s.get(self.i) {
                None => return Err("unterminated string".into()),
                Some('"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('\\') if matches!(self.s.get(self.i + 1), Some('"' | '\\')) => {
                    out.push(self.s[self.i + 1]);
                    self.i += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn field_value(&mut self) -> Result<Value, String> {
        if self.eat('"') {
            return self.string().map(Value::Str);
        }
        let raw = self.token(&[',', ' '], &[])?;
        let bad = || format!("bad field value {raw:?}");
        Ok(match raw.as_str() {
            "true" | "t" | "T" | "True" | "TRUE" => Value::Bool(true),
            "false" | "f" | "F" | "False" | "FALSE" => Value::Bool(false),
            r if r.ends_with('i') => Value::Int(r[..r.len() - 1].parse().map_err(|_| bad())?),
            r if r.ends_with('u') => Value::UInt(r[..r.len() - 1].parse().map_err(|_| bad())?),
            r => Value::Float(r.parse().map_err(|_| bad())?),
        })
    }
}

/// Parses one line (without its `\n`).
pub fn parse(line: &str, modern: bool) -> Result<Line, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut c = Cursor {
        s: &chars,
        i: 0,
        modern,
    };
    let measurement = c.token(&[',', ' '], &[',', ' '])?;
    let mut tags = Vec::new();
    while c.eat(',') {
        let key = c.token(&['='], &[',', ' ', '='])?;
        if !c.eat('=') {
            return Err(format!("tag {key:?} has no value"));
        }
        tags.push((key, c.token(&[',', ' '], &[',', ' ', '='])?));
    }
    if !c.eat(' ') {
        return Err("no field set".into());
    }
    let mut fields = Vec::new();
    loop {
        let key = c.token(&['='], &[',', ' ', '='])?;
        if !c.eat('=') {
            return Err(format!("field {key:?} has no value"));
        }
        fields.push((key, c.field_value()?));
        if !c.eat(',') {
            break;
        }
    }
    if !c.eat(' ') {
        return Err("no timestamp".into());
    }
    let rest: String = chars[c.i..].iter().collect();
    let timestamp = rest
        .parse()
        .map_err(|_| format!("bad timestamp {rest:?}"))?;
    Ok(Line {
        measurement,
        tags,
        fields,
        timestamp,
    })
}
