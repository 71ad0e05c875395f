//! Display filter syntax: tokens (nom) and a recursive-descent parser with
//! Wireshark's precedence (`not` binds tightest, then `and`, then `or`).
//! Every error carries the byte offset it is about, for the caret.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, multispace0};
use nom::combinator::recognize;
use nom::sequence::pair;
use nom::{IResult, Parser};

/// Deepest nesting of parentheses and `not` accepted: far beyond any real
/// filter, well within the stack.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A field name, keyword or bare value: `ip.src`, `and`, `SEND_MSG`,
    /// `10.1.0.0/16`, `00:14:4f:f8:00:01`, `6482`.
    Word(String),
    /// A double-quoted string, unescaped.
    Str(String),
    Op(&'static str),
    Open,
    Close,
    /// `{` and `}` around a set: `ip.src in {10.1.1.0/24 10.2.0.1}`.
    OpenSet,
    CloseSet,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub at: usize,
    pub len: usize,
}

/// A syntax or meaning error at a byte range of the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub message: String,
    pub at: usize,
    pub len: usize,
    pub hint: Option<String>,
}

impl FilterError {
    pub fn new(message: impl Into<String>, at: usize, len: usize) -> FilterError {
        FilterError { message: message.into(), at, len: len.max(1), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> FilterError {
        self.hint = Some(hint.into());
        self
    }

    /// The message with the expression and a caret under the offending
    /// part. Control characters of the expression are shown escaped (the
    /// caret counts them as shown), never sent to the terminal.
    pub fn render(&self, expression: &str) -> String {
        use crate::escape::escape_controls;
        let at = self.at.min(expression.len());
        let prefix = expression.get(..at).unwrap_or("");
        let span = expression.get(at..(at + self.len).min(expression.len())).unwrap_or("");
        let pad = " ".repeat(escape_controls(prefix).chars().count());
        let width = escape_controls(span).chars().count().max(1);
        let marks = format!("^{}", "~".repeat(width - 1));
        let shown = escape_controls(expression).replace('\n', "\\x0a");
        let message = escape_controls(&self.message).replace('\n', "\\x0a");
        let mut out = format!("invalid display filter: {message}\n  {shown}\n  {pad}{marks}");
        if let Some(hint) = &self.hint {
            out.push_str(&format!("\nhint: {hint}"));
        }
        out
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-')
}

fn word(input: &str) -> IResult<&str, Token> {
    take_while1(is_word_char).map(|w: &str| Token::Word(w.to_string())).parse(input)
}

fn op(input: &str) -> IResult<&str, Token> {
    alt((tag("=="), tag("!="), tag("<="), tag(">="), tag("&&"), tag("||"), tag("<"), tag(">"), tag("!"), tag("~")))
        .map(|o: &str| {
            Token::Op(match o {
                "==" => "==",
                "!=" => "!=",
                "<=" => "<=",
                ">=" => ">=",
                "&&" => "and",
                "||" => "or",
                "<" => "<",
                ">" => ">",
                "!" => "not",
                _ => "matches",
            })
        })
        .parse(input)
}

fn paren(input: &str) -> IResult<&str, Token> {
    alt((
        char('(').map(|_| Token::Open),
        char(')').map(|_| Token::Close),
        char('{').map(|_| Token::OpenSet),
        char('}').map(|_| Token::CloseSet),
        // Wireshark allows commas between a set's members.
        char(',').map(|_| Token::Op(",")),
    ))
    .parse(input)
}

/// A double-quoted string with `\"` and `\\` escapes.
fn quoted(input: &str) -> IResult<&str, Token> {
    let (rest, body) = recognize(pair(char('"'), string_body)).parse(input)?;
    let inner = &body[1..body.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Ok((rest, Token::Str(out)))
}

/// The rest of a quoted string up to and including the closing quote.
fn string_body(input: &str) -> IResult<&str, &str> {
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Ok((&input[i + 1..], &input[..i + 1])),
            _ => {}
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(input, nom::error::ErrorKind::Char)))
}

/// Splits an expression into tokens with their byte offsets.
pub fn tokenize(expression: &str) -> Result<Vec<Spanned>, FilterError> {
    let mut tokens = Vec::new();
    let mut rest = expression;
    loop {
        let (after_space, _) = multispace0::<&str, nom::error::Error<&str>>.parse(rest).unwrap_or((rest, ""));
        rest = after_space;
        if rest.is_empty() {
            return Ok(tokens);
        }
        let at = expression.len() - rest.len();
        if rest.starts_with('"') && quoted(rest).is_err() {
            return Err(FilterError::new("unterminated string", at, rest.len()).hint("close it with \""));
        }
        match alt((quoted, op, paren, word)).parse(rest) {
            Ok((after, token)) => {
                tokens.push(Spanned { token, at, len: rest.len() - after.len() });
                rest = after;
            }
            Err(_) => {
                let bad = take_while::<_, &str, nom::error::Error<&str>>(|c: char| !c.is_whitespace())
                    .parse(rest)
                    .map_or(1, |(_, b)| b.len());
                // The whole character: a byte slice could cut a UTF-8 sequence.
                let first = rest.chars().next().unwrap_or(' ');
                return Err(FilterError::new(format!("unexpected character '{first}'"), at, bad)
                    .hint("fields look like ip.src, strings are \"quoted\", operators are == != < > <= >= contains matches and or not"));
            }
        }
    }
}

/// The syntax tree before fields and values are checked. A chain of `and`
/// (or of `or`) is one node with every term: the tree is only as deep as
/// the parentheses and `not`s, which `MAX_DEPTH` caps, however long a
/// chain is (a chain of 10,000 nested pairwise overflowed the stack).
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Or(Vec<Ast>),
    And(Vec<Ast>),
    Not(Box<Ast>),
    /// A bare field: true when present.
    Present {
        field: String,
        at: usize,
    },
    Compare {
        field: String,
        field_at: usize,
        op: &'static str,
        value: Spanned,
    },
}

const COMPARE_WORDS: &[(&str, &str)] = &[
    ("eq", "=="),
    ("ne", "!="),
    ("lt", "<"),
    ("gt", ">"),
    ("le", "<="),
    ("ge", ">="),
    ("contains", "contains"),
    ("matches", "matches"),
];

struct Descent<'t> {
    tokens: &'t [Spanned],
    pos: usize,
    end: usize,
}

impl Descent<'_> {
    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.pos)
    }

    fn keyword(&self, word: &str) -> bool {
        match self.peek().map(|t| &t.token) {
            Some(Token::Word(w)) => w.eq_ignore_ascii_case(word),
            Some(Token::Op(o)) => *o == word,
            _ => false,
        }
    }

    fn or(&mut self, depth: usize) -> Result<Ast, FilterError> {
        let mut terms = vec![self.and(depth)?];
        while self.keyword("or") {
            self.pos += 1;
            terms.push(self.and(depth)?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Ast::Or(terms) })
    }

    fn and(&mut self, depth: usize) -> Result<Ast, FilterError> {
        let mut terms = vec![self.not(depth)?];
        while self.keyword("and") {
            self.pos += 1;
            terms.push(self.not(depth)?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Ast::And(terms) })
    }

    fn not(&mut self, depth: usize) -> Result<Ast, FilterError> {
        if depth > MAX_DEPTH {
            let at = self.peek().map_or(self.end, |t| t.at);
            return Err(FilterError::new(format!("nested more than {MAX_DEPTH} deep"), at, 1));
        }
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Ast::Not(Box::new(self.not(depth + 1)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Ast, FilterError> {
        let Some(token) = self.peek().cloned() else {
            return Err(FilterError::new("the expression ends where a field or ( was expected", self.end, 1));
        };
        match token.token {
            Token::Open => {
                self.pos += 1;
                let inner = self.or(depth + 1)?;
                match self.peek() {
                    Some(Spanned { token: Token::Close, .. }) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    Some(other) => Err(FilterError::new("expected )", other.at, other.len)),
                    None => Err(FilterError::new("missing )", token.at, 1).hint("every ( needs a matching )")),
                }
            }
            Token::Word(field) if !is_keyword(&field) => {
                self.pos += 1;
                self.comparison(field, token.at)
            }
            _ => Err(FilterError::new("expected a field name", token.at, token.len)
                .hint("for example ldm.msg_type == SEND_MSG")),
        }
    }

    fn comparison(&mut self, field: String, field_at: usize) -> Result<Ast, FilterError> {
        // `in {...}` and `not in {...}`: membership of a set.
        if self.keyword("in") {
            self.pos += 1;
            return self.set(field, field_at);
        }
        if self.keyword("not")
            && self
                .tokens
                .get(self.pos + 1)
                .is_some_and(|t| matches!(&t.token, Token::Word(w) if w.eq_ignore_ascii_case("in")))
        {
            self.pos += 2;
            return Ok(Ast::Not(Box::new(self.set(field, field_at)?)));
        }
        let op = match self.peek().map(|t| &t.token) {
            Some(Token::Op(o)) if !matches!(*o, "and" | "or" | "not" | ",") => *o,
            Some(Token::Word(w)) => match COMPARE_WORDS.iter().find(|(word, _)| w.eq_ignore_ascii_case(word)) {
                Some((_, op)) => op,
                None if is_keyword(w) => return Ok(Ast::Present { field, at: field_at }),
                None => {
                    let t = self.peek().cloned().unwrap_or(Spanned { token: Token::Close, at: self.end, len: 1 });
                    return Err(FilterError::new(format!("expected an operator after {field}"), t.at, t.len)
                        .hint("== != < > <= >= contains matches, or and/or to combine"));
                }
            },
            // A bare field: `ldm.hostname` is true when the field is present.
            _ => return Ok(Ast::Present { field, at: field_at }),
        };
        let op_at = self.peek().map_or(self.end, |t| t.at);
        self.pos += 1;
        match self.peek().cloned() {
            Some(value @ Spanned { token: Token::Word(_) | Token::Str(_), .. }) => {
                self.pos += 1;
                Ok(Ast::Compare { field, field_at, op, value })
            }
            Some(other) => Err(FilterError::new(format!("expected a value after {op}"), other.at, other.len)),
            None => Err(FilterError::new(format!("expected a value after {op}"), op_at, op.len())),
        }
    }
}

impl Descent<'_> {
    /// The members of `{...}` after `in`: one comparison each, `or`ed; a
    /// member `a..b` is the range from a to b, both included.
    fn set(&mut self, field: String, field_at: usize) -> Result<Ast, FilterError> {
        match self.peek() {
            Some(Spanned { token: Token::OpenSet, .. }) => self.pos += 1,
            Some(other) => {
                return Err(FilterError::new("expected { after in", other.at, other.len)
                    .hint("a set is written {a b c}, a range {40..312}"))
            }
            None => return Err(FilterError::new("expected { after in", self.end, 1)),
        }
        let mut members = Vec::new();
        loop {
            let Some(token) = self.peek().cloned() else {
                return Err(FilterError::new("missing } at the end of the set", self.end, 1));
            };
            self.pos += 1;
            let compare = |op: &'static str, value: Spanned| Ast::Compare { field: field.clone(), field_at, op, value };
            match &token.token {
                Token::CloseSet if members.is_empty() => {
                    return Err(FilterError::new("an empty set matches nothing", token.at, token.len))
                }
                Token::CloseSet => break,
                Token::Op(",") => continue,
                Token::Word(w) => match w.split_once("..") {
                    Some((low, high)) if !low.is_empty() && !high.is_empty() => {
                        let part = |text: &str, at: usize| Spanned {
                            token: Token::Word(text.to_string()),
                            at,
                            len: text.len(),
                        };
                        let low_part = part(low, token.at);
                        let high_part = part(high, token.at + low.len() + 2);
                        members.push(Ast::And(vec![compare(">=", low_part), compare("<=", high_part)]));
                    }
                    _ => members.push(compare("==", token.clone())),
                },
                Token::Str(_) => members.push(compare("==", token.clone())),
                _ => {
                    return Err(FilterError::new("expected a value or } in the set", token.at, token.len)
                        .hint("a set is written {a b c}, a range {40..312}"))
                }
            }
        }
        Ok(if members.len() == 1 { members.remove(0) } else { Ast::Or(members) })
    }
}

fn is_keyword(word: &str) -> bool {
    ["and", "or", "not"].iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// Parses an expression into its syntax tree.
pub fn parse(expression: &str) -> Result<Ast, FilterError> {
    let tokens = tokenize(expression)?;
    if tokens.is_empty() {
        return Err(FilterError::new("the filter is empty", 0, 1).hint("for example -Y 'ldm.msg_type == SEND_MSG'"));
    }
    let mut parser = Descent { tokens: &tokens, pos: 0, end: expression.len() };
    let ast = parser.or(0)?;
    if let Some(extra) = parser.peek() {
        return Err(FilterError::new("unexpected text after a complete expression", extra.at, extra.len)
            .hint("combine conditions with and / or"));
    }
    Ok(ast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> Ast {
        Ast::Present { field: name.to_string(), at: 0 }
    }

    fn shape(ast: &Ast) -> String {
        match ast {
            Ast::Or(terms) => format!("({})", terms.iter().map(shape).collect::<Vec<_>>().join(" or ")),
            Ast::And(terms) => format!("({})", terms.iter().map(shape).collect::<Vec<_>>().join(" and ")),
            Ast::Not(a) => format!("(not {})", shape(a)),
            Ast::Present { field, .. } => field.clone(),
            Ast::Compare { field, op, value, .. } => {
                let v = match &value.token {
                    Token::Word(w) => w.clone(),
                    Token::Str(s) => format!("{s:?}"),
                    other => format!("{other:?}"),
                };
                format!("{field} {op} {v}")
            }
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let ast = parse("a or b and not c").unwrap();
        assert_eq!(shape(&ast), "(a or (b and (not c)))");
        let ast = parse("(a or b) and c").unwrap();
        assert_eq!(shape(&ast), "((a or b) and c)");
        let ast = parse("!a && b || c").unwrap();
        assert_eq!(shape(&ast), "(((not a) and b) or c)");
        let ast = parse("a and b and c or d").unwrap();
        assert_eq!(shape(&ast), "((a and b and c) or d)");
        assert_eq!(parse("ip").unwrap(), field("ip"));
    }

    #[test]
    fn comparisons_and_values() {
        let ast =
            parse(r#"ldm.hostname contains "ld\"om" and ip.src == 10.1.0.0/16 or ldm.msg_type eq SEND_MSG"#).unwrap();
        assert_eq!(
            shape(&ast),
            r#"((ldm.hostname contains "ld\"om" and ip.src == 10.1.0.0/16) or ldm.msg_type == SEND_MSG)"#
        );
        assert_eq!(shape(&parse("ldm.mac == 00:14:4f:f8:12:34").unwrap()), "ldm.mac == 00:14:4f:f8:12:34");
        assert_eq!(shape(&parse("ldm.rtt >= 0.5").unwrap()), "ldm.rtt >= 0.5");
        assert_eq!(shape(&parse(r#"ldm.hostname ~ "^ldom-[ab]$""#).unwrap()), r#"ldm.hostname matches "^ldom-[ab]$""#);
    }

    #[test]
    fn sets_are_ors_of_comparisons_and_ranges() {
        let ast = parse("ldm.msg_type in {SEND_MSG RESPONSE_MSG}").unwrap();
        assert_eq!(shape(&ast), "(ldm.msg_type == SEND_MSG or ldm.msg_type == RESPONSE_MSG)");
        let ast = parse(r#"udp.length in {40..312, 320} and not ip.src in {"10.1.1.5"}"#).unwrap();
        assert_eq!(
            shape(&ast),
            r#"(((udp.length >= 40 and udp.length <= 312) or udp.length == 320) and (not ip.src == "10.1.1.5"))"#
        );
        let ast = parse("ip.src not in {10.1.1.0/24 10.2.0.1}").unwrap();
        assert_eq!(shape(&ast), "(not (ip.src == 10.1.1.0/24 or ip.src == 10.2.0.1))");
        for (text, message) in [
            ("ip.src in 10.1.1.1", "expected { after in"),
            ("ip.src in {}", "an empty set matches nothing"),
            ("ip.src in {10.1.1.1", "missing } at the end of the set"),
            ("ip.src in {(}", "expected a value or } in the set"),
        ] {
            assert_eq!(parse(text).unwrap_err().message, message, "{text}");
        }
    }

    #[test]
    fn non_ascii_characters_are_errors_not_panics() {
        // Found by the display_filter fuzz target: the message sliced one byte
        // of a two-byte character.
        let err = parse(":ld==\u{f8} ").unwrap_err();
        assert_eq!(err.message, "unexpected character 'ø'");
        assert!(err.render(":ld==\u{f8} ").contains("'ø'"));
        for text in ["ldm.hostname == é", "€", "ip.src == 1.2.3.4 && 日本"] {
            let err = parse(text).unwrap_err();
            assert!(err.message.starts_with("unexpected character"), "{text}: {}", err.message);
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = parse("ip.src == ").unwrap_err();
        assert_eq!((err.at, err.message.as_str()), (7, "expected a value after =="));
        let err = parse("(ip.src == 1.2.3.4").unwrap_err();
        assert_eq!(err.at, 0);
        let err = parse("ip.src == 1.2.3.4 ip.dst").unwrap_err();
        assert_eq!(err.at, 18);
        let err = parse(r#"ldm.hostname == "open"#).unwrap_err();
        assert_eq!(err.at, 16);
        let err = parse("ip.src $ 3").unwrap_err();
        assert_eq!(err.at, 7);
        assert!(parse("").is_err());
        assert!(parse("and").is_err());
        let rendered = parse("ip.src == ").unwrap_err().render("ip.src == ");
        assert!(rendered.contains("\n         ^~"), "{rendered}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}ip{}", "(".repeat(10_000), ")".repeat(10_000));
        let err = parse(&deep).unwrap_err();
        assert!(err.message.contains("nested"), "{}", err.message);
        let nots = format!("{}ip", "not ".repeat(10_000));
        assert!(parse(&nots).is_err());
    }

    #[test]
    fn long_flat_chains_are_one_level_deep() {
        for joint in [" and ", " or ", " && ", " || "] {
            let chain = vec!["ip"; 10_000].join(joint);
            match parse(&chain).unwrap() {
                Ast::And(terms) | Ast::Or(terms) => assert_eq!(terms.len(), 10_000),
                other => panic!("{other:?}"),
            }
        }
        let mixed = vec!["ip and udp"; 5_000].join(" or ");
        assert!(matches!(parse(&mixed).unwrap(), Ast::Or(terms) if terms.len() == 5_000));
    }
}
