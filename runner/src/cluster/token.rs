//! The shared secret: 256 bits, hex in a file only its owner can read. Everything a controller
//! and its agents prove to each other derives from it: it is the Noise pre-shared key (see
//! [`super::handshake`]).

use anyhow::{bail, Context};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const TOKEN_BYTES: usize = 32;

/// The token, never printed (its Debug says so).
#[derive(Clone)]
pub struct Token(pub(super) [u8; TOKEN_BYTES]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Reads `path`: 64 hex digits (surrounding whitespace allowed). A file that group or others
    /// may read is refused, as ssh refuses a readable private key: anyone who can read it can
    /// aim the load.
    pub fn read(path: &Path) -> anyhow::Result<Token> {
        use std::os::unix::fs::OpenOptionsExt;
        let meta = std::fs::metadata(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        // A FIFO or a device would block the read (or never end); only a plain file is a token.
        if !meta.is_file() {
            bail!(
                "the token file {} is not a regular file (it is {}); write one with                  `runbench token FILE`",
                path.display(),
                file_kind(&meta.file_type())
            );
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "the token file {} has mode {mode:04o}: group or others may read it; \
                 make it 0600 (`chmod 600 {}`)",
                path.display(),
                path.display()
            );
        }
        // O_NONBLOCK: should the file have been swapped for a FIFO since, opening it does not
        // wait for a writer.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        let mut text = String::new();
        f.by_ref()
            .take(1024)
            .read_to_string(&mut text)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        Token::parse(text.trim()).with_context(|| format!("the token file {}", path.display()))
    }

    pub fn parse(hex: &str) -> anyhow::Result<Token> {
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("not hexadecimal (a token is 64 hex digits, `runbench token`)");
        }
        if hex.len() % 2 != 0 {
            bail!(
                "{} hex digits, an odd number: a token is 64 (`runbench token`)",
                hex.len()
            );
        }
        let bytes = from_hex(hex).context("not hexadecimal")?;
        let Ok(arr) = <[u8; TOKEN_BYTES]>::try_from(bytes.as_slice()) else {
            bail!(
                "holds {} byte{}; a token is {TOKEN_BYTES} bytes (64 hex digits, `runbench token`)",
                bytes.len(),
                if bytes.len() == 1 { "" } else { "s" }
            );
        };
        Ok(Token(arr))
    }

    /// A fresh random token.
    pub fn generate() -> std::io::Result<Token> {
        Ok(Token(random_bytes()?))
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Writes a fresh token to `path`, created 0600 (never over an existing file).
    pub fn write_new(path: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let token = Token::generate().context("reading /dev/urandom")?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(f, "{}", token.to_hex()).with_context(|| format!("writing {}", path.display()))
    }
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a plain file"
    }
}

/// 32 bytes from the kernel's CSPRNG.
pub fn random_bytes() -> std::io::Result<[u8; 32]> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_file_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        Token::write_new(&path).unwrap();
        assert!(Token::read(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = format!("{:#}", Token::read(&path).unwrap_err());
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn a_short_or_non_hex_token_is_refused() {
        let e = |s: &str| Token::parse(s).unwrap_err().to_string();
        assert!(e("abcd").contains("holds 2 bytes"), "{}", e("abcd"));
        assert!(e("ab").contains("holds 1 byte;"), "{}", e("ab"));
        assert!(
            e("abc").contains("3 hex digits, an odd number"),
            "{}",
            e("abc")
        );
        assert!(e(&"zz".repeat(32)).contains("not hexadecimal"));
        assert!(Token::parse(&"ab".repeat(32)).is_ok());
    }

    #[test]
    fn a_fifo_or_a_folder_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = format!("{:#}", Token::read(&fifo).unwrap_err());
        assert!(e.contains("not a regular file (it is a FIFO)"), "{e}");
        let e = format!("{:#}", Token::read(dir.path()).unwrap_err());
        assert!(e.contains("it is a folder"), "{e}");
    }
}
