//! `formwork policy test`: the rules' own unit tests, run by Guard's test runner on a directory
//! of the working tree (`policies/x.guard` with its cases in `policies/tests/x_tests.yaml`).

use std::path::Path;

use cfn_guard::CommandBuilder;
use cfn_guard::commands::Executable;
use cfn_guard::commands::validate::OutputFormatType;
use cfn_guard::utils::reader::{ReadBuffer, Reader};
use cfn_guard::utils::writer::{WriteBuffer, Writer};

/// Why the tests could not be run.
#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    #[error("there is no directory {0}")]
    NoDirectory(String),
    #[error("the rule tests could not be run: {0}")]
    Guard(String),
}

/// The outcome of a test run.
#[derive(Debug)]
pub struct TestRun {
    /// Whether every test passed (and every rule file parsed).
    pub passed: bool,
    /// Guard's report: one block per rule file, each test case with its expected and actual
    /// status; JSON when asked for.
    pub report: String,
}

/// Runs the tests of every rule file in `dir`.
pub fn run(dir: &Path, json: bool) -> Result<TestRun, TestRunError> {
    if !dir.is_dir() {
        return Err(TestRunError::NoDirectory(dir.display().to_string()));
    }
    let guard = |e: cfn_guard::Error| TestRunError::Guard(e.to_string());
    let command = cfn_guard::TestBuilder::default()
        .directory(Some(dir.display().to_string()))
        .alphabetical(true)
        .output_format(if json {
            OutputFormatType::JSON
        } else {
            OutputFormatType::SingleLineSummary
        })
        .try_build()
        .map_err(guard)?;
    let mut writer =
        Writer::new_with_err(WriteBuffer::Vec(Vec::new()), WriteBuffer::Vec(Vec::new()))
            .map_err(guard)?;
    let mut reader = Reader::new(ReadBuffer::Cursor(std::io::Cursor::new(Vec::new())));
    let status = command.execute(&mut writer, &mut reader).map_err(guard)?;
    let report = writer.stripped().map_err(guard)?;
    Ok(TestRun {
        passed: status == 0,
        report,
    })
}
