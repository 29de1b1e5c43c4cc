//! Mails a test sent through a [`Mailbox`]: the token of a mailed link.

use mail::Mailbox;

/// The token of the last link to the app's page `page` (e.g. `verify-email`) mailed to
/// `to`, read from the link in the mail's text body.
pub fn link_token(mailbox: &Mailbox, to: &str, page: &str) -> String {
    let link = format!("/{page}#token=");
    let mails = mailbox.sent_to(to);
    let text = mails
        .iter()
        .rev()
        .filter_map(|m| m.body.text_part.as_deref())
        .find(|text| text.contains(&link))
        .unwrap_or_else(|| panic!("no link to {page} mailed to {to}: {mails:?}"));
    let at = text.find(&link).unwrap() + link.len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
