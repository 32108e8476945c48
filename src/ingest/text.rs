//! What the readers of other tools' files share: splitting a CSV line, and naming the machine
//! a file describes when its folder does not (see [`super::folders`]).

use super::record::MachineKey;
use crate::util::machine_id::{MachineFacts, machine_id};
use crate::util::slug;

/// One CSV line split into fields (RFC 4180: fields may be quoted, `""` is a quote inside a
/// quoted field). Fields spanning lines are not supported: the tools read here write none.
pub fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    let mut column = 0usize;
    loop {
        column += 1;
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(format!("field {column}: quote opened and never closed")),
                }
            }
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    return Ok(fields);
                }
                Some(',') => fields.push(std::mem::take(&mut field)),
                Some(c) => {
                    return Err(format!(
                        "field {column}: {c:?} after a closing quote (expected a comma)"
                    ));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(std::mem::take(&mut field));
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(std::mem::take(&mut field));
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// The machine a tool's file names: labelled by what did the work (the accelerator, else the
/// CPU), with an id made the way silirep names machines (`<slug>-<8 hex>`, FNV-1a of the facts
/// the file gives: host name, CPU, accelerator, devices), so the same facts give the same id
/// in every file and on every machine.
pub fn tool_machine(
    label: &str,
    host: &str,
    cpu: &str,
    accelerator: Option<&str>,
    devices: Option<&str>,
) -> MachineKey {
    let id = machine_id(&MachineFacts {
        host_identity: host,
        cpu_model: cpu,
        cpu_threads: None,
        memory_bytes: None,
        accelerator,
        devices,
    });
    // With neither accelerator nor CPU named (iperf3 names only the host), the id leads with
    // the label rather than the placeholder `machine`.
    let lead: String = slug(label).chars().take(40).collect();
    let id = match id.strip_prefix("machine-") {
        Some(hash) if !lead.is_empty() => format!("{}-{hash}", lead.trim_end_matches('-')),
        _ => id,
    };
    MachineKey {
        id,
        label: label.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_quoted_or_not() {
        assert_eq!(
            split_csv_line("\"a\",b,\"c, d\",\"say \"\"hi\"\"\"\r\n").unwrap(),
            vec!["a", "b", "c, d", "say \"hi\""]
        );
        assert_eq!(split_csv_line("").unwrap(), vec![""]);
        assert_eq!(split_csv_line("a,").unwrap(), vec!["a", ""]);
        assert!(
            split_csv_line("\"open")
                .unwrap_err()
                .contains("never closed")
        );
        assert!(
            split_csv_line("\"a\"b")
                .unwrap_err()
                .contains("after a closing quote")
        );
    }

    #[test]
    fn tool_machines_are_stable_and_led_by_the_accelerator() {
        let a = tool_machine("NVIDIA H200", "node1", "", Some("NVIDIA H200"), Some("0,1"));
        let b = tool_machine("NVIDIA H200", "node1", "", Some("NVIDIA H200"), Some("0,1"));
        let c = tool_machine("NVIDIA H200", "node2", "", Some("NVIDIA H200"), Some("0,1"));
        assert_eq!(a, b);
        assert_ne!(a.id, c.id);
        assert!(a.id.starts_with("nvidia-h200-"), "{}", a.id);
        let host_only = tool_machine("lab-box", "Linux lab-box 6.1", "", None, None);
        assert!(host_only.id.starts_with("lab-box-"), "{}", host_only.id);
    }
}
