//! Where in a JSON body a serde error points, as a path (`$.pull_request.head.sha`).

/// The byte offset serde_json's (1-based line, byte column) points at.
pub(super) fn error_offset(body: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    if line > 1 {
        let mut newlines = 0;
        for (i, &b) in body.iter().enumerate() {
            if b == b'\n' {
                newlines += 1;
                if newlines == line - 1 {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    (start + column).min(body.len())
}

/// One open container while scanning JSON.
enum Frame {
    Object {
        key: Option<String>,
        /// Whether the current key's `:` was seen (so a value is being read).
        in_value: bool,
    },
    Array {
        index: usize,
    },
}

/// The JSON path (`$.a.b[2].c`) of the value being read at byte `offset` of `body`. With
/// `container`, the path of the object being read instead of its current member (serde reports
/// a missing field at the end of the object that lacks it).
pub(super) fn json_path(body: &[u8], offset: usize, container: bool) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let end = offset.min(body.len());
    let mut i = 0;
    while i < end {
        match body[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                if i >= end {
                    break;
                }
                if let Some(Frame::Object {
                    key,
                    in_value: false,
                }) = stack.last_mut()
                {
                    *key = serde_json::from_slice::<String>(&body[start..=i]).ok();
                }
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, in_value }) => {
                    *key = None;
                    *in_value = false;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'{' => stack.push(Frame::Object {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    // serde reports a missing field once it has read the `}` of the object that lacks it, or
    // while looking at that `}`: the path is then the object's own.
    let closed = body[..end]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'}');
    if container
        && !closed
        && let Some(Frame::Object { key, .. }) = stack.last_mut()
    {
        *key = None;
    }
    let mut path = String::from("$");
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    path.push('.');
                    path.push_str(key);
                } else {
                    path.push_str(&format!("[{}]", serde_json::Value::from(key.as_str())));
                }
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}
