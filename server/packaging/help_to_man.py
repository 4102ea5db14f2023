"""Writes tinycached(1) from the binary's own `-h` and `--list-presets`, so the man page
never drifts from the help. Run by the build (server/packaging/CMakeLists.txt):

  python3 help_to_man.py --tinycached <binary> --output <dir>/tinycached.1

writes tinycached.1 and tinycached.1.gz. Every line of -h lands in the page: option lines
("-p, --port=<num>  text") become tagged paragraphs, their continuation lines join them,
"   - name  text" lines under -o become the EXTENDED OPTIONS list, and any other line is
kept as text. tests/integration/packaging_test.py checks that every option -h prints is in
the page.
"""
import argparse
import gzip
import re
import subprocess

OPTION = re.compile(r"^ {0,4}(-[^\s,]+(?:, --\S+)*(?: <[^>]+>)?)(\s+)(\S.*)$")
SUBOPTION = re.compile(r"^ {1,4}- ([^\s,]+(?:, [^\s,]+)*)\s+(\S.*)$")
CONTINUATION = re.compile(r"^ {10,}(\S.*)$")


def roff(text):
    """Escapes text for a roff line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = text.replace("\u2014", "\\(em").replace("\u00d7", "\\(mu")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, check=True).stdout


def parse_help(text):
    """Returns (title, entries): entries are (kind, name, [text lines]) with kind
    'option', 'suboption' or 'text'."""
    lines = text.rstrip("\n").split("\n")
    title, entries = lines[0], []
    for line in lines[1:]:
        m = SUBOPTION.match(line)
        if m:
            entries.append(("suboption", m.group(1), [m.group(2)]))
            continue
        m = OPTION.match(line)
        # An option's text starts two blanks after it, or one after a long name or a
        # <value>; "-o ext_* ssl_*" is a line of text that happens to start with a flag.
        if m and (len(m.group(2)) > 1 or ", --" in m.group(1) or m.group(1).endswith(">")):
            entries.append(("option", m.group(1), [m.group(3)]))
            continue
        m = CONTINUATION.match(line)
        if m and entries and entries[-1][0] != "text":
            entries[-1][2].append(m.group(1))
            continue
        if entries and entries[-1][0] == "text":
            entries[-1][2].append(line.strip())
        else:
            entries.append(("text", None, [line.strip()]))
    return title, entries


def bold_name(name):
    # "-p, --port=<num>": the flags bold, the <value> italic.
    parts = re.split(r"(<[^>]+>)", name)
    out = []
    for p in parts:
        if p.startswith("<"):
            out.append("\\fI%s\\fR" % roff(p))
        elif p:
            out.append("\\fB%s\\fR" % roff(p))
    return "".join(out)


def man_page(binary):
    title, entries = parse_help(run(binary, "-h"))
    version = run(binary, "-V").strip()
    presets = [l for l in run(binary, "--list-presets").split("\n") if l.strip()]
    summary = title.split("\u2014", 1)[-1].strip() if "\u2014" in title else title
    out = [
        '.TH TINYCACHED 1 "" "%s" "User Commands"' % roff(version),
        ".SH NAME",
        "tinycached \\- %s" % roff(summary),
        ".SH SYNOPSIS",
        ".B tinycached",
        ".RI [ options ]",
        ".SH DESCRIPTION",
        "tinycached serves memcached's ASCII and binary protocols and takes memcached's",
        "command line, so it can replace a packaged memcached. Its item store is",
        "configurable: the default preset stores items in memcached 1.6's own layout,",
        "and the other presets (below) store the same items in less memory with every",
        "reply unchanged.",
        ".SH OPTIONS",
    ]
    in_sub = False
    for kind, name, text in entries:
        if kind == "suboption" and not in_sub:
            out += [".SS EXTENDED OPTIONS (\\-o name=value,...)"]
            in_sub = True
        if kind == "text":
            out += [".PP"] + [roff(t) for t in text if t]
        else:
            out += [".TP", bold_name(name)] + [roff(t) for t in text]
    out += [".SH PRESETS",
            "The item layout presets, in ladder order, and the knobs each sets",
            "(\\fBtinycached \\-\\-list\\-presets\\fR):"]
    for line in presets:
        name, _, rest = line.partition(" ")
        knobs, _, why = rest.strip().partition("#")
        out += [".TP", "\\fB%s\\fR" % roff(name), roff(why.strip()), ".br", roff(knobs.strip())]
    out += [
        ".SH FILES",
        ".TP",
        ".I /etc/tinycached.conf",
        "The flags systemd's tinycached.service starts the server with, one per line as in",
        "memcached.conf; \\-d lines are ignored and \\fBlogfile\\fR \\fIpath\\fR sends the",
        "output to \\fIpath\\fR (the Debian package's paths; an install under another",
        "prefix puts the file under its etc).",
        ".TP",
        ".I /usr/lib/systemd/system/tinycached.service",
        "The unit; \\fBsystemctl edit tinycached\\fR adds settings that survive upgrades.",
        ".TP",
        ".I /usr/libexec/tinycached/systemd\\-tinycached\\-wrapper",
        "The unit's ExecStart: reads the conf and execs tinycached.",
        ".SH SEE ALSO",
        ".BR memcached (1),",
        ".BR systemctl (1)",
    ]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tinycached", required=True)
    parser.add_argument("--output", required=True, help="the .1 file; a .1.gz is written beside it")
    args = parser.parse_args()
    page = man_page(args.tinycached).encode()
    with open(args.output, "wb") as f:
        f.write(page)
    # mtime=0 and no file name: the same page gives the same bytes.
    with open(args.output + ".gz", "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as z:
            z.write(page)


if __name__ == "__main__":
    main()
