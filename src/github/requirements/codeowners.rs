//! A `CODEOWNERS` file: who owns which paths of the repository, as GitHub reads it ("About
//! code owners" in GitHub's documentation): one rule a line, a pattern and its owners
//! (`@user`, `@org/team` or an email address); the last rule that matches a path wins, and a
//! rule without owners leaves its paths unowned. Patterns follow `.gitignore` (`*`, `**`, `?`,
//! a leading `/` anchors, a trailing `/` means a directory and all beneath it), except that
//! `!` negation and `[ ]` ranges are not supported, and a pattern whose last part is `*`
//! (`docs/*`) matches the files directly in that directory only.

use regex::Regex;

/// Where GitHub looks for the file, in its order.
pub const LOCATIONS: &[&str] = &[".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

/// The rules of one `CODEOWNERS` file.
#[derive(Debug, Default)]
pub struct CodeOwners {
    rules: Vec<Rule>,
    /// Lines that could not be read: (line number, why). GitHub skips them too.
    pub skipped: Vec<(usize, String)>,
}

#[derive(Debug)]
struct Rule {
    matcher: Regex,
    owners: Vec<String>,
}

impl CodeOwners {
    pub fn parse(text: &str) -> CodeOwners {
        let mut out = CodeOwners::default();
        for (i, line) in text.lines().enumerate() {
            let mut words = split_unescaped(line);
            let Some(pattern) = words.next() else {
                continue;
            };
            let owners: Vec<String> = words
                .take_while(|w| !w.starts_with('#'))
                .map(str::to_string)
                .collect();
            match matcher(&pattern.replace("\\#", "#").replace("\\ ", " ")) {
                Ok(matcher) => out.rules.push(Rule { matcher, owners }),
                Err(why) => out.skipped.push((i + 1, why)),
            }
        }
        out
    }

    /// The owners of `path` (relative to the repository's root); empty when it has none.
    pub fn owners_of(&self, path: &str) -> &[String] {
        self.rules
            .iter()
            .rev()
            .find(|r| r.matcher.is_match(path))
            .map(|r| r.owners.as_slice())
            .unwrap_or(&[])
    }
}

/// The words of a line up to a comment, a backslash keeping a space or `#` in a word.
fn split_unescaped(line: &str) -> impl Iterator<Item = &str> {
    let line = match line.trim_start().starts_with('#') {
        true => "",
        false => line,
    };
    let mut words = Vec::new();
    let (mut start, mut escaped) = (None, false);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => {
                escaped = true;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    words.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        words.push(&line[s..]);
    }
    words.into_iter()
}

/// The regular expression of one pattern, over paths relative to the root.
fn matcher(pattern: &str) -> Result<Regex, String> {
    if pattern.starts_with('!') {
        return Err(format!(
            "`{pattern}`: negation is not supported in CODEOWNERS"
        ));
    }
    if pattern.contains('[') {
        return Err(format!(
            "`{pattern}`: character ranges are not supported in CODEOWNERS"
        ));
    }
    let dir_only = pattern.ends_with('/');
    let body = pattern.trim_end_matches('/');
    let anchored = body.starts_with('/') || body.contains('/');
    let body = body.trim_start_matches('/');
    if body.is_empty() {
        return Err(format!("`{pattern}` matches nothing"));
    }
    let mut re = String::from(if anchored { "^" } else { "^(?:.*/)?" });
    let parts: Vec<&str> = body.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if *part == "**" {
            re.push_str(if last { ".*" } else { "(?:.*/)?" });
            continue;
        }
        for c in part.chars() {
            match c {
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        if !last {
            re.push('/');
        }
    }
    let files_only = parts.last() == Some(&"*") && parts.len() > 1;
    re.push_str(match (dir_only, files_only) {
        (true, _) => "/.+$",
        (false, true) => "$",
        (false, false) => "(?:/.+)?$",
    });
    Regex::new(&re).map_err(|e| format!("`{pattern}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of GitHub's "About code owners" page, each as the page explains it.
    #[test]
    fn githubs_documented_examples() {
        let owners = CodeOwners::parse(
            "# comment\n\
             *       @global-owner1 @global-owner2\n\
             *.js    @js-owner #This is an inline comment.\n\
             *.go docs@example.com\n\
             *.txt @octo-org/octocats\n\
             /build/logs/ @doctocat\n\
             docs/*  docs@example.com\n\
             apps/ @octocat\n\
             /docs/ @doctocat\n\
             /scripts/ @doctocat @octocat\n\
             **/logs @octocat\n\
             /apps/ @octocat\n\
             /apps/github\n",
        );
        assert!(owners.skipped.is_empty(), "{:?}", owners.skipped);
        let of = |p| owners.owners_of(p).join(" ");
        assert_eq!(of("README.md"), "@global-owner1 @global-owner2");
        assert_eq!(of("src/deep/app.js"), "@js-owner");
        assert_eq!(of("main.go"), "docs@example.com");
        assert_eq!(of("a/b.txt"), "@octo-org/octocats");
        // `/build/logs/` is shadowed by the later `**/logs`.
        assert_eq!(of("build/logs/x/y.log"), "@octocat");
        // `docs/*` is shadowed by the later `/docs/`; `apps/` anywhere, `/apps/` at the root.
        assert_eq!(of("docs/getting-started.md"), "@doctocat");
        assert_eq!(of("deep/apps/x.rb"), "@octocat");
        assert_eq!(of("scripts/run.sh"), "@doctocat @octocat");
        assert_eq!(of("deep/er/logs/x"), "@octocat");
        // The last rule has no owners: the path is unowned.
        assert_eq!(of("apps/github/a.rb"), "");
        assert_eq!(of("apps/other/a.rb"), "@octocat");
    }

    #[test]
    fn a_trailing_star_matches_files_directly_inside_only() {
        let owners = CodeOwners::parse("docs/* @a\n");
        assert_eq!(owners.owners_of("docs/getting-started.md"), ["@a"]);
        assert!(
            owners
                .owners_of("docs/build-app/troubleshooting.md")
                .is_empty()
        );
        assert!(owners.owners_of("other/docs/x.md").is_empty());
    }

    #[test]
    fn anchoring_and_directories() {
        let owners = CodeOwners::parse(
            "environments/prod/ @octo-org/platform\n/pipelines/**/*.yml @bob\nenvironment.yml @carol\n",
        );
        assert_eq!(
            owners.owners_of("environments/prod/environment.yml"),
            ["@carol"]
        );
        assert_eq!(
            owners.owners_of("environments/prod/extra.yml"),
            ["@octo-org/platform"]
        );
        assert!(owners.owners_of("x/environments/prod/extra.yml").is_empty());
        assert_eq!(owners.owners_of("pipelines/a/b/c.yml"), ["@bob"]);
        assert_eq!(owners.owners_of("pipelines/c.yml"), ["@bob"]);
        assert!(owners.owners_of("pipelines/c.json").is_empty());
    }

    #[test]
    fn escapes_and_unsupported_lines() {
        let owners = CodeOwners::parse("\\#notes @a\nwith\\ space.md @b\n!keep @c\n[ab].md @d\n");
        assert_eq!(owners.owners_of("#notes"), ["@a"]);
        assert_eq!(owners.owners_of("with space.md"), ["@b"]);
        assert_eq!(
            owners.skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
            [3, 4]
        );
        assert!(owners.owners_of("keep").is_empty());
    }
}
