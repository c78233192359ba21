//! Slurm: renders the two batch scripts of a cluster sweep and, if asked, submits them.
//! `array.sbatch` is a job array whose task I runs `windtunnel run --shard I/N --no-fit`
//! (the shards are the same cost-balanced split every machine computes); `merge.sbatch`
//! runs `windtunnel collect` once the array has ended (`afterany`), so whatever finished is
//! fitted. Before the time limit Slurm sends USR1 to the batch shell (`--signal=B:USR1@T`);
//! the script forwards it to `run`, which makes every worker checkpoint and exit, then
//! requeues the task so it resumes from the checkpoints. Rendering is pure; only `submit`
//! touches the system.

use crate::UserError;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything the scripts need. Paths must be absolute: jobs start in another directory.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub sweep_name: String,
    /// The sweep file the tasks read (a copy frozen at render time, see `write`).
    pub sweep_file: PathBuf,
    pub results: PathBuf,
    pub exe: PathBuf,
    pub out_dir: PathBuf,
    pub shards: usize,
    pub partition: Option<String>,
    /// HH:MM:SS (or anything sbatch's --time accepts; `time_s` must parse it).
    pub time: String,
    pub cpus: usize,
    pub mem: Option<String>,
    pub gpus: Option<usize>,
    /// Seconds before the time limit at which USR1 asks the tasks to checkpoint.
    pub grace_s: u64,
}

/// Seconds in a Slurm time limit: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.
pub fn time_s(t: &str) -> Result<u64> {
    let bad = || UserError(format!("--time `{t}`: expected HH:MM:SS, D-HH:MM:SS or minutes"));
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().map_err(|_| bad())?, r),
        None => (0, t),
    };
    let parts: Vec<u64> = rest.split(':').map(|p| p.parse::<u64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    let s = match (days > 0 || t.contains('-'), parts.as_slice()) {
        (false, [m]) => m * 60,
        (false, [m, s]) => m * 60 + s,
        (false, [h, m, s]) | (true, [h, m, s]) => h * 3600 + m * 60 + s,
        (true, [h]) => h * 3600,
        (true, [h, m]) => h * 3600 + m * 60,
        _ => return Err(bad().into()),
    };
    if s + days * 86400 == 0 {
        return Err(bad().into());
    }
    Ok(s + days * 86400)
}

/// Default warning time: a tenth of the limit, between 30 s and 5 min (enough to finish a
/// step and write a checkpoint of a model this tool trains).
pub fn default_grace_s(time_s: u64) -> u64 {
    (time_s / 10).clamp(30, 300).min(time_s / 2).max(1)
}

/// Most array tasks: Slurm's default MaxArraySize is 1001 (indices 0-1000), and a sweep split
/// into more shards than that is a typo (each task trains whole runs).
pub const MAX_SHARDS: usize = 1000;
/// Largest `--signal` warning time Slurm accepts, in seconds.
const MAX_GRACE_S: u64 = 65535;

fn q(p: &Path) -> String {
    shell_quote(&p.display().to_string())
}

/// A value of a `#SBATCH` line, double-quoted: sbatch splits these lines itself (not bash),
/// honouring double quotes and backslash escapes and treating an unquoted `#` as a comment,
/// so quoting keeps a space or `#` in a path inside the value.
fn sbatch_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A directory for Slurm's `--output` pattern: `%` is Slurm's replacement character, so a
/// literal one is written `%%`.
fn output_pattern(dir: &Path, file: &str) -> String {
    format!("{}/{file}", dir.display().to_string().replace('%', "%%"))
}

/// Why `s` cannot be written into a script, if it cannot: a control character (a newline
/// would start a new command line in the script).
fn unsafe_text(s: &str) -> Option<String> {
    s.chars()
        .find(|c| c.is_control())
        .map(|c| format!("contains the control character U+{:04X}; it would break the generated scripts", c as u32))
}

fn check_path(what: &str, p: &Path, in_sbatch_line: bool) -> Result<(), UserError> {
    let Some(s) = p.to_str() else {
        return Err(UserError(format!("{what} `{}` is not valid UTF-8; Slurm scripts are text", p.display())));
    };
    if let Some(why) = unsafe_text(s) {
        return Err(UserError(format!("{what} {s:?} {why}")));
    }
    // Slurm turns off every %-replacement in a file name holding a backslash (its `\\`
    // escape), so `array-%A_%a.out` would no longer name one log per task.
    if in_sbatch_line && s.contains('\\') {
        return Err(UserError(format!("{what} {s:?} contains `\\`, which Slurm's --output patterns cannot hold")));
    }
    Ok(())
}

/// Checks every value that reaches the scripts, naming the flag it came from: nothing may break
/// out of its line or its quotes. Values Slurm parses itself (partition, memory, time) must be
/// in their own syntax, since an sbatch option cannot be quoted into meaning something else.
pub fn check(o: &SlurmOptions) -> Result<(), UserError> {
    let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if o.sweep_name.is_empty() || !o.sweep_name.chars().all(name_ok) || o.sweep_name.starts_with('-') {
        return Err(UserError(format!("sweep name {:?} is not a plain word [A-Za-z0-9_-]+", o.sweep_name)));
    }
    check_path("--results", &o.results, false)?;
    check_path("--out", &o.out_dir, true)?;
    check_path("the sweep file copy", &o.sweep_file, false)?;
    check_path("the windtunnel executable's path", &o.exe, false)?;
    if let Some(p) = &o.partition {
        // Partition names, or a comma-separated list of them (sbatch tries each).
        let ok = |c: char| c.is_ascii_alphanumeric() || "_-.,".contains(c);
        if p.is_empty() || !p.chars().all(ok) {
            return Err(UserError(format!(
                "--partition {p:?}: expected a partition name or a comma-separated list (letters, digits, `_`, `-`, `.`)"
            )));
        }
    }
    if let Some(m) = &o.mem {
        let digits = m.trim_end_matches(|c: char| "KMGTkmgt".contains(c));
        let ok = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && m.len() - digits.len() <= 1;
        if !ok {
            return Err(UserError(format!("--mem {m:?}: expected a size such as 8G, 500M or 16000 (megabytes)")));
        }
    }
    if o.time.is_empty() || !o.time.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '-') {
        return Err(UserError(format!("--time {:?}: expected HH:MM:SS, D-HH:MM:SS or minutes", o.time)));
    }
    if o.shards == 0 || o.shards > MAX_SHARDS {
        return Err(UserError(format!(
            "--shards {}: expected 1 to {MAX_SHARDS} (Slurm's default MaxArraySize allows 1001 array tasks)",
            o.shards
        )));
    }
    if o.grace_s > MAX_GRACE_S {
        return Err(UserError(format!("--grace {}: Slurm's --signal accepts at most {MAX_GRACE_S} s", o.grace_s)));
    }
    Ok(())
}

/// Single-quotes a word for bash.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn header(o: &SlurmOptions, name: &str, output: &str) -> String {
    let out = sbatch_quote(&output_pattern(&o.out_dir, output));
    let mut s = format!("#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={out}\n");
    if let Some(p) = &o.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    s += &format!("#SBATCH --time={}\n#SBATCH --cpus-per-task={}\n#SBATCH --ntasks=1\n", o.time, o.cpus);
    if let Some(m) = &o.mem {
        s += &format!("#SBATCH --mem={m}\n");
    }
    if let Some(g) = o.gpus {
        s += &format!("#SBATCH --gres=gpu:{g}\n");
    }
    s
}

/// The job array: one task per shard.
pub fn render_array(o: &SlurmOptions) -> String {
    let mut s = header(o, &format!("wt-{}", o.sweep_name), "array-%A_%a.out");
    s += &format!("#SBATCH --array=0-{}\n#SBATCH --requeue\n#SBATCH --signal=B:USR1@{}\n", o.shards - 1, o.grace_s);
    s += &format!(
        r#"# Rendered by `windtunnel slurm`: shard $SLURM_ARRAY_TASK_ID of {n} of sweep `{name}`.
# USR1 ({grace} s before the time limit) reaches this shell only (B:); it is forwarded to
# `run`, whose workers checkpoint and exit; the task is then requeued and resumes.
set -u
export RAYON_NUM_THREADS=1
{exe} run {sweep} --results {results} --shard "$SLURM_ARRAY_TASK_ID/{n}" --jobs {jobs} --no-fit &
pid=$!
stopped=0
trap 'stopped=1; kill -USR1 "$pid" 2>/dev/null' USR1
# `wait` returns early when a trapped signal arrives; wait again until `run` has exited.
wait "$pid"; rc=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done
# exit 4: `run` stopped on the signal with work left (checkpointed); resume in a new slot.
if [ "$stopped" = 1 ] && [ "$rc" = 4 ]; then
    echo "time limit near: checkpointed; requeueing task $SLURM_ARRAY_TASK_ID"
    scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
fi
exit $rc
"#,
        n = o.shards,
        name = o.sweep_name,
        grace = o.grace_s,
        exe = q(&o.exe),
        sweep = q(&o.sweep_file),
        results = q(&o.results),
        jobs = o.cpus.max(1),
    );
    s
}

/// The merge job: collect, fit, report, and a status table in its log.
pub fn render_merge(o: &SlurmOptions) -> String {
    let mut s = header(o, &format!("wt-{}-merge", o.sweep_name), "merge-%j.out");
    s += &format!(
        r#"# Rendered by `windtunnel slurm`: runs after the array has ended (afterany), however
# its tasks ended, and fits whatever runs are DONE.
set -u
export RAYON_NUM_THREADS={cpus}
{exe} status {dir}
{exe} collect {sweep} --results {results}
"#,
        cpus = o.cpus.max(1),
        exe = q(&o.exe),
        dir = q(&o.results.join(&o.sweep_name)),
        sweep = q(&o.sweep_file),
        results = q(&o.results),
    );
    s
}

/// Writes `array.sbatch`, `merge.sbatch` and the frozen `sweep.toml` into `o.out_dir` (the
/// tasks read that copy, so editing the sweep file after submitting changes nothing).
pub fn write(o: &SlurmOptions, sweep_text: &[u8]) -> Result<(PathBuf, PathBuf)> {
    check(o)?;
    crate::store::write_atomic(&o.sweep_file, sweep_text)?;
    let (a, m) = (o.out_dir.join("array.sbatch"), o.out_dir.join("merge.sbatch"));
    crate::store::write_atomic(&a, render_array(o).as_bytes())?;
    crate::store::write_atomic(&m, render_merge(o).as_bytes())?;
    Ok((a, m))
}

/// `sbatch --parsable` of the array, then of the merge job depending on it. Returns the two
/// job ids.
pub fn submit(array: &Path, merge: &Path) -> Result<(String, String)> {
    let dir = array.parent().unwrap_or(Path::new("."));
    let a = sbatch(&[array.as_os_str()], dir)?;
    let dep = format!("--dependency=afterany:{a}");
    let m = sbatch(&[dep.as_ref(), merge.as_os_str()], dir)?;
    Ok((a, m))
}

fn sbatch(args: &[&std::ffi::OsStr], dir: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running sbatch (is Slurm installed and on PATH?)")?;
    if !out.status.success() {
        bail!("sbatch {:?} failed: {}", args, String::from_utf8_lossy(&out.stderr).trim());
    }
    // --parsable prints "jobid" or "jobid;cluster".
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id: {text:?}");
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SlurmOptions {
        SlurmOptions {
            sweep_name: "tiny".into(),
            sweep_file: "/r/tiny/slurm/sweep.toml".into(),
            results: "/r".into(),
            exe: "/opt/it's/windtunnel".into(),
            out_dir: "/r/tiny/slurm".into(),
            shards: 3,
            partition: Some("cpu".into()),
            time: "01:00:00".into(),
            cpus: 4,
            mem: Some("8G".into()),
            gpus: None,
            grace_s: 300,
        }
    }

    #[test]
    fn array_script_shards_forwards_usr1_and_requeues() {
        let s = render_array(&opts());
        for want in [
            "#SBATCH --array=0-2\n",
            "#SBATCH --partition=cpu\n",
            "#SBATCH --time=01:00:00\n",
            "#SBATCH --cpus-per-task=4\n",
            "#SBATCH --mem=8G\n",
            "#SBATCH --requeue\n",
            "#SBATCH --signal=B:USR1@300\n",
            r#"'/opt/it'\''s/windtunnel' run '/r/tiny/slurm/sweep.toml' --results '/r' --shard "$SLURM_ARRAY_TASK_ID/3" --jobs 4 --no-fit &"#,
            r#"trap 'stopped=1; kill -USR1 "$pid" 2>/dev/null' USR1"#,
            r#"scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}""#,
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        assert!(!s.contains("--gres"));
        let m = render_merge(&SlurmOptions { gpus: Some(1), partition: None, ..opts() });
        assert!(m.contains("#SBATCH --gres=gpu:1\n") && !m.contains("--array") && !m.contains("partition"), "{m}");
        assert!(m.contains("collect '/r/tiny/slurm/sweep.toml' --results '/r'"), "{m}");
    }

    /// A newline in any value would put a command on its own line of the
    /// script; each flag is refused by name, and the scripts are not written.
    #[test]
    fn control_characters_and_bad_values_are_refused_by_flag() {
        let dir = std::env::temp_dir().join(format!("wt-slurm-inj-{}", std::process::id()));
        let bad = "/tmp/r\ntouch /tmp/x\n#";
        let cases: Vec<(SlurmOptions, &str)> = vec![
            (SlurmOptions { results: bad.into(), ..opts() }, "--results"),
            (SlurmOptions { out_dir: bad.into(), ..opts() }, "--out"),
            (SlurmOptions { out_dir: "/r/a\\b".into(), ..opts() }, "--out"),
            (SlurmOptions { exe: "/bin/wt\r".into(), ..opts() }, "executable"),
            (SlurmOptions { partition: Some("cpu\n#SBATCH --x".into()), ..opts() }, "--partition"),
            (SlurmOptions { partition: Some("cpu gpu".into()), ..opts() }, "--partition"),
            (SlurmOptions { mem: Some("8G\ntouch /tmp/x".into()), ..opts() }, "--mem"),
            (SlurmOptions { mem: Some("8GB; x".into()), ..opts() }, "--mem"),
            (SlurmOptions { time: "+1".into(), ..opts() }, "--time"),
            (SlurmOptions { shards: 0, ..opts() }, "--shards"),
            (SlurmOptions { shards: 1001, ..opts() }, "--shards"),
            (SlurmOptions { grace_s: 70000, ..opts() }, "--grace"),
            (SlurmOptions { sweep_name: "-rf".into(), ..opts() }, "sweep name"),
        ];
        for (o, flag) in cases {
            let e = check(&o).unwrap_err().0;
            assert!(e.contains(flag), "{flag}: {e}");
            let o = SlurmOptions { sweep_file: dir.join("sweep.toml"), ..o };
            assert!(write(&o, b"x").is_err(), "{flag}: written");
        }
        assert!(!dir.join("array.sbatch").exists());
        check(&opts()).unwrap();
        check(&SlurmOptions { shards: 1000, mem: Some("16000".into()), partition: Some("a,b-2".into()), ..opts() })
            .unwrap();
    }

    /// A space, `#`, `"` or `%` in a path stays inside the quoted `--output` value, `%`
    /// doubled so Slurm writes it literally; the bash lines single-quote the same paths.
    #[test]
    fn paths_with_spaces_and_percent_are_quoted() {
        let o = SlurmOptions {
            out_dir: "/r/my \"big\" #1 100%/slurm".into(),
            results: "/r/my \"big\" #1 100%".into(),
            ..opts()
        };
        check(&o).unwrap();
        let s = render_array(&o);
        assert!(s.contains("#SBATCH --output=\"/r/my \\\"big\\\" #1 100%%/slurm/array-%A_%a.out\"\n"), "{s}");
        assert!(s.contains("--results '/r/my \"big\" #1 100%' --shard"), "{s}");
        let m = render_merge(&o);
        assert!(m.contains("#SBATCH --output=\"/r/my \\\"big\\\" #1 100%%/slurm/merge-%j.out\"\n"), "{m}");
        // Every line is a comment, a directive or script: nothing a value could have added.
        for line in s.lines().chain(m.lines()) {
            assert!(!line.starts_with("touch"), "{line}");
        }
    }

    #[test]
    fn slurm_time_limits_parse() {
        assert_eq!(time_s("01:00:00").unwrap(), 3600);
        assert_eq!(time_s("90").unwrap(), 5400);
        assert_eq!(time_s("10:30").unwrap(), 630);
        assert_eq!(time_s("1-02").unwrap(), 93600);
        assert_eq!(time_s("1-00:00:10").unwrap(), 86410);
        assert!(time_s("1h").is_err() && time_s("0").is_err() && time_s("1:2:3:4").is_err());
        assert_eq!(default_grace_s(3600), 300);
        assert_eq!(default_grace_s(300), 30);
        assert_eq!(default_grace_s(40), 20);
    }
}
