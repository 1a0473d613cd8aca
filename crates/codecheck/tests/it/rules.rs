//! Table-driven: for each rule at least 8 snippets that must fire (on the given lines, and
//! nothing else) and 8 that must not. A snippet's line 1 is the line after `r#"`.

use shammie_codecheck::{check, Rule};

struct Case {
    name: &'static str,
    code: &'static str,
    /// Every finding expected: (rule, line). Empty for a negative.
    expect: &'static [(Rule, usize)],
}

fn run(cases: &[Case], rule: Rule) {
    let mut failures = Vec::new();
    for c in cases {
        let code = c.code.strip_prefix('\n').unwrap_or(c.code);
        let got: Vec<(Rule, usize)> = check(code).iter().map(|f| (f.rule, f.line)).collect();
        if got != c.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                c.name, c.expect, got
            ));
        }
    }
    assert!(failures.is_empty(), "{rule}:\n{}", failures.join("\n"));
    let pos = cases.iter().filter(|c| !c.expect.is_empty()).count();
    assert!(
        pos >= 8 && cases.len() - pos >= 8,
        "{rule}: {pos} positives of {}",
        cases.len()
    );
    assert!(cases.iter().flat_map(|c| c.expect).all(|(r, _)| *r == rule));
}

const SQL: Rule = Rule::SqlInjection;

#[test]
fn cwe_89_sql_injection() {
    run(
        &[
            // Positives.
            Case {
                name: "f-string into execute",
                code: r#"
def find_user(db, username):
    cur = db.cursor()
    cur.execute(f"SELECT * FROM users WHERE name = '{username}'")
    return cur.fetchone()
"#,
                expect: &[(SQL, 3)],
            },
            Case {
                name: "concatenation in a variable",
                code: r#"
@app.route("/orders")
def orders():
    customer = request.args.get("customer")
    query = "SELECT id, total FROM orders WHERE customer = '" + customer + "'"
    rows = get_db().execute(query).fetchall()
    return jsonify(rows)
"#,
                expect: &[(SQL, 5)],
            },
            Case {
                name: "percent formatting",
                code: r#"
def delete_item(conn, item_id):
    conn.execute("DELETE FROM items WHERE id = %s" % item_id)
    conn.commit()
"#,
                expect: &[(SQL, 2)],
            },
            Case {
                name: ".format on a literal",
                code: r#"
def rename(cursor, old, new):
    sql = "UPDATE tags SET label = '{}' WHERE label = '{}'".format(new, old)
    cursor.execute(sql)
"#,
                expect: &[(SQL, 3)],
            },
            Case {
                name: ".format on a variable holding a template",
                code: r#"
TEMPLATE = "SELECT * FROM posts WHERE author = '{author}'"
def posts_by(cursor, author):
    cursor.execute(TEMPLATE.format(author=author))
"#,
                expect: &[(SQL, 3)],
            },
            Case {
                name: "+= builds a WHERE clause, multi-line call",
                code: r#"
def search(conn, term, limit):
    q = "SELECT title FROM books"
    q += " WHERE title LIKE '%" + term + "%'"
    return conn.cursor().execute(
        q
    ).fetchall()
"#,
                expect: &[(SQL, 4)],
            },
            Case {
                name: "interpolated table name with parameters still injects",
                code: r#"
def count(cursor, table, flag):
    cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE flag = ?", (flag,))
"#,
                expect: &[(SQL, 2)],
            },
            Case {
                name: "sqlalchemy text of an f-string, after a comment and docstring",
                code: r#"
def by_email(session, email):
    """Looks a user up.
    The execute below uses text().
    """
    # parameterised? no
    stmt = text(f"SELECT * FROM accounts WHERE email = '{email}'")
    return session.execute(stmt)
"#,
                expect: &[(SQL, 6), (SQL, 7)],
            },
            Case {
                name: "str() does not sanitise",
                code: r#"
uid = input("id: ")
cursor.execute("SELECT * FROM t WHERE uid = " + str(uid))
"#,
                expect: &[(SQL, 2)],
            },
            // Negatives.
            Case {
                name: "parameterised with a tuple",
                code: r#"
def find_user(db, username):
    cur = db.cursor()
    cur.execute("SELECT * FROM users WHERE name = ?", (username,))
"#,
                expect: &[],
            },
            Case {
                name: "parameterised through a variable",
                code: r#"
def orders(conn, customer):
    query = "SELECT id FROM orders WHERE customer = %s"
    conn.execute(query, (customer,))
"#,
                expect: &[],
            },
            Case {
                name: "named parameters",
                code: r#"
def rename(cursor, old, new):
    cursor.execute("UPDATE tags SET label = :new WHERE label = :old", {"new": new, "old": old})
"#,
                expect: &[],
            },
            Case {
                name: "literal concatenation only",
                code: r#"
SQL = ("SELECT a, b "
       "FROM t " + "ORDER BY a")
cursor.execute(SQL)
"#,
                expect: &[],
            },
            Case {
                name: "int() cast in an f-string",
                code: r#"
def page(cursor, n):
    cursor.execute(f"SELECT * FROM items LIMIT 10 OFFSET {int(n) * 10}")
"#,
                expect: &[],
            },
            Case {
                name: "injection only in a comment",
                code: r#"
def find(cursor, name):
    # cursor.execute("SELECT * FROM u WHERE n = '" + name + "'")
    cursor.execute("SELECT * FROM u WHERE n = ?", [name])
"#,
                expect: &[],
            },
            Case {
                name: "injection only inside a docstring",
                code: r#"
def find(cursor, name):
    """Never do cursor.execute(f"SELECT * FROM u WHERE n = '{name}'")."""
    cursor.execute("SELECT * FROM u WHERE n = ?", (name,))
"#,
                expect: &[],
            },
            Case {
                name: "formatted string that is not executed",
                code: r#"
def log_query(logger, name):
    msg = f"looking up {name}"
    logger.info(msg)
    cursor.execute("SELECT 1")
"#,
                expect: &[],
            },
            Case {
                name: "executemany with parameters",
                code: r#"
rows = [(n, s) for n, s in scores]
conn.executemany("INSERT INTO scores (name, score) VALUES (?, ?)", rows)
"#,
                expect: &[],
            },
        ],
        SQL,
    );
}

const CMD: Rule = Rule::CommandInjection;

#[test]
fn cwe_78_command_injection() {
    run(
        &[
            Case {
                name: "os.system with concatenation",
                code: r#"
import os
def ping(host):
    os.system("ping -c 1 " + host)
"#,
                expect: &[(CMD, 3)],
            },
            Case {
                name: "os.system with a request value in an f-string",
                code: r#"
@app.route("/convert", methods=["POST"])
def convert():
    name = request.form["file"]
    os.system(f"convert {name} out.png")
    return "ok"
"#,
                expect: &[(CMD, 4)],
            },
            Case {
                name: "subprocess.run with shell=True and a formatted string",
                code: r#"
import subprocess
def archive(folder):
    cmd = "tar czf backup.tgz {}".format(folder)
    subprocess.run(cmd, shell=True, check=True)
"#,
                expect: &[(CMD, 4)],
            },
            Case {
                name: "Popen shell=True on several lines",
                code: r#"
def grep(pattern, path):
    proc = subprocess.Popen(
        "grep " + pattern + " " + path,
        stdout=subprocess.PIPE,
        shell=True,
    )
    return proc.communicate()[0]
"#,
                expect: &[(CMD, 2)],
            },
            Case {
                name: "check_output with shell=True and a variable",
                code: r#"
def disk_usage(user_dir):
    return subprocess.check_output("du -sh %s" % user_dir, shell=True)
"#,
                expect: &[(CMD, 2)],
            },
            Case {
                name: "os.popen of a parameter",
                code: r#"
def run_tool(command_line):
    return os.popen(command_line).read()
"#,
                expect: &[(CMD, 2)],
            },
            Case {
                name: "subprocess.getoutput of sys.argv",
                code: r#"
import sys, subprocess
print(subprocess.getoutput("whois " + sys.argv[1]))
"#,
                expect: &[(CMD, 2)],
            },
            Case {
                name: "subprocess.call with shell=True, list whose first element is built",
                code: r#"
def unzip(archive):
    subprocess.call(["unzip " + archive], shell=True)
"#,
                expect: &[(CMD, 2)],
            },
            // Negatives.
            Case {
                name: "list form without shell",
                code: r#"
def ping(host):
    subprocess.run(["ping", "-c", "1", host], check=True)
"#,
                expect: &[],
            },
            Case {
                name: "os.system of a literal",
                code: r#"
import os
os.system("clear")
"#,
                expect: &[],
            },
            Case {
                name: "shell=True with a literal command in a variable",
                code: r#"
CMD = "ls -la /var/log"
out = subprocess.check_output(CMD, shell=True)
"#,
                expect: &[],
            },
            Case {
                name: "shlex.quote around the value",
                code: r#"
import shlex
def ping(host):
    os.system("ping -c 1 " + shlex.quote(host))
"#,
                expect: &[],
            },
            Case {
                name: "shell=False with a string",
                code: r#"
def show(path):
    subprocess.run(f"cat {path}", shell=False)
"#,
                expect: &[],
            },
            Case {
                name: "Popen list form from request data",
                code: r#"
@app.route("/grep")
def grep():
    pattern = request.args.get("q", "")
    p = subprocess.Popen(["grep", "-r", pattern, "/srv/docs"], stdout=subprocess.PIPE)
    return p.communicate()[0]
"#,
                expect: &[],
            },
            Case {
                name: "commented-out shell call",
                code: r#"
def ping(host):
    # os.system("ping " + host)
    subprocess.run(["ping", host])
"#,
                expect: &[],
            },
            Case {
                name: "int() of the value",
                code: r#"
def sleep_for(seconds):
    os.system("sleep %d" % int(seconds))
"#,
                expect: &[],
            },
        ],
        CMD,
    );
}

const XSS: Rule = Rule::Xss;

#[test]
fn cwe_79_xss() {
    run(
        &[
            Case {
                name: "render_template_string of an f-string with request data",
                code: r#"
@app.route("/hello")
def hello():
    name = request.args.get("name", "")
    return render_template_string(f"<h1>Hello {name}</h1>")
"#,
                expect: &[(XSS, 4)],
            },
            Case {
                name: "route returns concatenated HTML",
                code: r#"
@app.route("/search")
def search():
    q = request.args["q"]
    return "<p>Results for " + q + "</p>"
"#,
                expect: &[(XSS, 4)],
            },
            Case {
                name: "route variable in an f-string",
                code: r#"
@app.route("/user/<username>")
def profile(username):
    html = f"<div class='profile'>{username}</div>"
    return html
"#,
                expect: &[(XSS, 4)],
            },
            Case {
                name: "make_response of formatted HTML",
                code: r#"
@app.post("/comment")
def comment():
    body = request.form.get("body")
    page = "<li>%s</li>" % body
    return make_response(page, 201)
"#,
                expect: &[(XSS, 5)],
            },
            Case {
                name: "Markup of user data",
                code: r#"
@bp.route("/bio")
def bio():
    text = request.args.get("bio")
    return render_template("bio.html", bio=Markup(text))
"#,
                expect: &[(XSS, 4)],
            },
            Case {
                name: "literal template with |safe",
                code: r#"
@app.route("/note")
def note():
    return render_template_string("<p>{{ note | safe }}</p>", note=request.args.get("n"))
"#,
                expect: &[(XSS, 3)],
            },
            Case {
                name: "JavaScript innerHTML from the URL",
                code: r#"
const params = new URLSearchParams(window.location.search);
const msg = params.get("msg");
// show it
document.getElementById("banner").innerHTML = "<b>" + msg + "</b>";
"#,
                expect: &[(XSS, 4)],
            },
            Case {
                name: "JavaScript template literal, document.write and insertAdjacentHTML",
                code: r#"
function render(item) {
  list.insertAdjacentHTML("beforeend", `<li>${item.title}</li>`);
  document.write(item.footer);
}
"#,
                expect: &[(XSS, 2), (XSS, 3)],
            },
            Case {
                name: "React dangerouslySetInnerHTML",
                code: r#"
function Comment({ body }) {
  return <div dangerouslySetInnerHTML={{ __html: body }} />;
}
"#,
                expect: &[(XSS, 2)],
            },
            // Negatives.
            Case {
                name: "render_template with a context variable",
                code: r#"
@app.route("/hello")
def hello():
    name = request.args.get("name", "")
    return render_template("hello.html", name=name)
"#,
                expect: &[],
            },
            Case {
                name: "escape() around the value",
                code: r#"
from markupsafe import escape
@app.route("/search")
def search():
    q = request.args["q"]
    return "<p>Results for " + escape(q) + "</p>"
"#,
                expect: &[],
            },
            Case {
                name: "html.escape in an f-string",
                code: r#"
import html
@app.route("/user/<username>")
def profile(username):
    return f"<div>{html.escape(username)}</div>"
"#,
                expect: &[],
            },
            Case {
                name: "render_template_string with a literal template and context",
                code: r#"
@app.route("/greet")
def greet():
    return render_template_string("<h1>Hi {{ who }}</h1>", who=request.args.get("who"))
"#,
                expect: &[],
            },
            Case {
                name: "jsonify of request data",
                code: r#"
@app.route("/echo")
def echo():
    return jsonify({"you_sent": request.args.get("x")})
"#,
                expect: &[],
            },
            Case {
                name: "formatted string in a plain function, not a route",
                code: r#"
def label(name):
    return f"<b>{name}</b>"
"#,
                expect: &[],
            },
            Case {
                name: "JavaScript textContent",
                code: r#"
const msg = new URLSearchParams(location.search).get("msg");
document.getElementById("banner").textContent = msg;
"#,
                expect: &[],
            },
            Case {
                name: "JavaScript innerHTML of a literal and of DOMPurify output",
                code: r#"
const EMPTY = "<em>nothing yet</em>";
box.innerHTML = EMPTY;
box.innerHTML = DOMPurify.sanitize(userHtml);
/* box.innerHTML = userHtml; */
"#,
                expect: &[],
            },
            Case {
                name: "route returns HTML formatted from server data only",
                code: r#"
@app.route("/stats")
def stats():
    total = db.count_items()
    return f"<p>{total} items in stock</p>"
"#,
                expect: &[],
            },
            Case {
                name: "route returns a literal",
                code: r#"
@app.route("/")
def index():
    user = request.args.get("u")
    log(user)
    return "<h1>Welcome</h1>"
"#,
                expect: &[],
            },
        ],
        XSS,
    );
}

const PATH: Rule = Rule::PathTraversal;

#[test]
fn cwe_22_path_traversal() {
    run(
        &[
            Case {
                name: "open of a joined request value",
                code: r#"
@app.route("/download")
def download():
    name = request.args.get("file")
    with open(os.path.join(BASE_DIR, name), "rb") as f:
        return f.read()
"#,
                expect: &[(PATH, 4)],
            },
            Case {
                name: "send_file of a route variable",
                code: r#"
@app.route("/files/<path:filename>")
def files(filename):
    return send_file(os.path.join(app.config["UPLOADS"], filename))
"#,
                expect: &[(PATH, 3)],
            },
            Case {
                name: "helper joins its parameter",
                code: r#"
def read_report(report_name):
    path = os.path.join("/srv/reports", report_name)
    with open(path) as fh:
        return fh.read()
"#,
                expect: &[(PATH, 3)],
            },
            Case {
                name: "f-string path",
                code: r#"
def load_avatar(user):
    return open(f"/var/avatars/{user}.png", "rb").read()
"#,
                expect: &[(PATH, 2)],
            },
            Case {
                name: "upload saved under the client's filename",
                code: r#"
@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["doc"]
    f.save(os.path.join(UPLOAD_DIR, f.filename))
    return "saved"
"#,
                expect: &[(PATH, 4)],
            },
            Case {
                name: "normalised but never checked",
                code: r#"
@app.route("/view")
def view():
    p = os.path.realpath(os.path.join(ROOT, request.args["p"]))
    return open(p).read()
"#,
                expect: &[(PATH, 4)],
            },
            Case {
                name: "os.remove of a concatenated path",
                code: r#"
def delete_upload(name):
    os.remove(UPLOAD_DIR + "/" + name)
"#,
                expect: &[(PATH, 2)],
            },
            Case {
                name: "tar extraction without a filter",
                code: r#"
import tarfile
def unpack(archive_path, dest):
    with tarfile.open(archive_path) as tar:
        tar.extractall(dest)
"#,
                expect: &[(PATH, 4)],
            },
            // Negatives.
            Case {
                name: "realpath plus startswith",
                code: r#"
@app.route("/download")
def download():
    name = request.args.get("file")
    full = os.path.realpath(os.path.join(BASE_DIR, name))
    if not full.startswith(os.path.realpath(BASE_DIR) + os.sep):
        abort(403)
    return send_file(full)
"#,
                expect: &[],
            },
            Case {
                name: "secure_filename",
                code: r#"
from werkzeug.utils import secure_filename
@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["doc"]
    f.save(os.path.join(UPLOAD_DIR, secure_filename(f.filename)))
    return "saved"
"#,
                expect: &[],
            },
            Case {
                name: "secure_filename in a variable",
                code: r#"
@app.route("/files/<name>")
def files(name):
    safe = secure_filename(name)
    return send_file(os.path.join(FILES, safe))
"#,
                expect: &[],
            },
            Case {
                name: "send_from_directory",
                code: r#"
@app.route("/static/<path:p>")
def static_files(p):
    return send_from_directory(STATIC_DIR, p)
"#,
                expect: &[],
            },
            Case {
                name: "literal path",
                code: r#"
with open(os.path.join(BASE_DIR, "config", "settings.json")) as f:
    settings = json.load(f)
"#,
                expect: &[],
            },
            Case {
                name: "plain parameter opened as given",
                code: r#"
def read_config(path):
    with open(path) as fh:
        return fh.read()
"#,
                expect: &[],
            },
            Case {
                name: "pathlib resolve plus is_relative_to",
                code: r#"
def read_report(report_name):
    p = (REPORTS / report_name).resolve()
    if not p.is_relative_to(REPORTS):
        raise ValueError("outside the reports folder")
    return open(os.path.join(REPORTS, report_name)).read()
"#,
                expect: &[],
            },
            Case {
                name: "tar extraction with a filter",
                code: r#"
import tarfile
with tarfile.open(path) as tar:
    tar.extractall(dest, filter="data")
"#,
                expect: &[],
            },
            Case {
                name: "basename of the request value",
                code: r#"
@app.route("/get")
def get():
    name = os.path.basename(request.args["f"])
    return open(os.path.join(DATA, name)).read()
"#,
                expect: &[],
            },
        ],
        PATH,
    );
}
