"""Build SQLite the way D1 counts it: `.cache/d1sqlite/libd1sqlite.so`.

D1 bills rows read and rows written, and reports both per statement in `meta`
(`rows_read`, `rows_written`). Those figures come from counters that workerd adds
to SQLite's bytecode engine (workerd `patches/sqlite/0001-row-counts-plain.patch`,
read by `src/workerd/util/sqlite.c++` with `sqlite3_stmt_status(stmt,
LIBSQL_STMTSTATUS_ROWS_READ / _ROWS_WRITTEN, ...)`, reset before every run).
They count, per statement:

  rows read     +1 at every b-tree seek (OP_SeekGE/GT/LE/LT, past an equality
                miss), every rowid lookup (OP_SeekRowid/OP_NotExists), OP_Rewind
                (sorters too), OP_Last, every step to a next row (OP_Next/OP_Prev,
                and OP_SorterNext through the same code), every virtual-table
                step (OP_VNext: a json_each() row, the end included); +N for a
                COUNT(*) that counts a whole b-tree (OP_Count);
  rows written  +1 at every row put into a table or an index (OP_Insert,
                OP_IdxInsert, temporary b-trees excepted), every row deleted
                from a table (OP_Delete flagged as a change; deleting the row's
                index entries, OP_IdxDelete, is not counted), +N for a table
                cleared (OP_Clear), +1 per virtual-table change (OP_VUpdate).

This script takes the SQLite amalgamation workerd uses (3.54.1, shipped inside the
npm package better-sqlite3@13.2.0, a devDependency installed with
`npm ci --ignore-scripts`), adds the same counters at the same places (written
here, from that description), and compiles it with the system C compiler. The
counters are read with `d1_rows(stmt, 0|1)` (tools/d1sqlite/__init__.py). Every
insertion point is found by an exact text anchor that must occur exactly once:
a different SQLite fails loudly here instead of counting wrong.

usage: python tools/d1sqlite/build.py [--src node_modules/better-sqlite3/deps/sqlite3] [--out .cache/d1sqlite]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SQLITE_VERSION = "3.54.1"  # workerd 1.20261117's; `strings workerd | grep ^3\.` shows it
READ, WRITTEN = "d1Rows[0]", "d1Rows[1]"

# (what, anchor, replacement): the anchor must occur exactly once in sqlite3.c.
EDITS: list[tuple[str, str, str]] = [
    ("the counters, per statement (struct Vdbe)",
     "  u32 aCounter[9];        /* Counters used by sqlite3_stmt_status() */\n",
     "  u32 aCounter[9];        /* Counters used by sqlite3_stmt_status() */\n"
     "  u64 d1Rows[2];          /* D1: rows read, rows written (tools/d1sqlite) */\n"),
    ("OP_Count: a whole b-tree counted",
     "    rc = sqlite3BtreeCount(db, pCrsr, &nEntry);\n",
     "    rc = sqlite3BtreeCount(db, pCrsr, &nEntry);\n"
     f"    p->{READ} += nEntry;\n"),
    ("OP_SeekGE/GT/LE/LT: a seek that did not miss an equality",
     "      goto seek_not_found;\n    }\n  }\n#ifdef SQLITE_TEST\n  sqlite3_search_count++;\n#endif\n",
     "      goto seek_not_found;\n    }\n  }\n"
     f"  p->{READ}++;\n"
     "#ifdef SQLITE_TEST\n  sqlite3_search_count++;\n#endif\n"),
    ("OP_SeekRowid/OP_NotExists: a rowid lookup",
     "  VdbeBranchTaken(res!=0,2);\n  pC->seekResult = res;\n  if( res!=0 ){\n",
     "  VdbeBranchTaken(res!=0,2);\n  pC->seekResult = res;\n"
     f"  p->{READ}++;\n"
     "  if( res!=0 ){\n"),
    ("OP_Insert: a table row written",
     "  assert( (pOp->p5 & OPFLAG_LASTROWID)==0 || (pOp->p5 & OPFLAG_NCHANGE)!=0 );\n"
     "  if( pOp->p5 & OPFLAG_NCHANGE ){\n",
     "  assert( (pOp->p5 & OPFLAG_LASTROWID)==0 || (pOp->p5 & OPFLAG_NCHANGE)!=0 );\n"
     f"  if( !pC->isEphemeral ) p->{WRITTEN}++;\n"
     "  if( pOp->p5 & OPFLAG_NCHANGE ){\n"),
    ("OP_Delete: a table row deleted (counted as a change)",
     "  if( opflags & OPFLAG_NCHANGE ){\n    p->nChange++;\n",
     "  if( opflags & OPFLAG_NCHANGE ){\n"
     f"    if( !pC->isEphemeral ) p->{WRITTEN}++;\n"
     "    p->nChange++;\n"),
    ("OP_Last",
     "  rc = sqlite3BtreeLast(pCrsr, &res);\n  pC->nullRow = (u8)res;\n  pC->deferredMoveto = 0;\n"
     "  pC->cacheStatus = CACHE_STALE;\n  if( rc ) goto abort_due_to_error;\n",
     "  rc = sqlite3BtreeLast(pCrsr, &res);\n  pC->nullRow = (u8)res;\n  pC->deferredMoveto = 0;\n"
     "  pC->cacheStatus = CACHE_STALE;\n  if( rc ) goto abort_due_to_error;\n"
     f"  p->{READ}++;\n"),
    ("OP_Rewind (and the sorters' OP_Sort/OP_SorterSort, which fall into it)",
     "  if( rc ) goto abort_due_to_error;\n  pC->nullRow = (u8)res;\n  if( pOp->p2>0 ){\n",
     "  if( rc ) goto abort_due_to_error;\n  pC->nullRow = (u8)res;\n"
     f"  p->{READ}++;\n"
     "  if( pOp->p2>0 ){\n"),
    ("OP_Next/OP_Prev/OP_SorterNext: a step onto a next row",
     "    pC->nullRow = 0;\n    p->aCounter[pOp->p5]++;\n",
     "    pC->nullRow = 0;\n    p->aCounter[pOp->p5]++;\n"
     f"    p->{READ}++;\n"),
    ("OP_IdxInsert: an index entry (or a WITHOUT ROWID row) written",
     "  if( pOp->p5 & OPFLAG_NCHANGE ) p->nChange++;\n  assert( pC->eCurType==CURTYPE_BTREE );\n",
     "  if( pOp->p5 & OPFLAG_NCHANGE ) p->nChange++;\n"
     f"  if( !pC->isEphemeral ) p->{WRITTEN}++;\n"
     "  assert( pC->eCurType==CURTYPE_BTREE );\n"),
    ("OP_Clear: a table emptied",
     "  if( pOp->p3 ){\n    p->nChange += nChange;\n",
     "  if( pOp->p3 ){\n    p->nChange += nChange;\n"
     f"    p->{WRITTEN} += nChange;\n"),
    ("OP_VNext: a virtual-table step (json_each)",
     "  rc = pModule->xNext(pCur->uc.pVCur);\n  sqlite3VtabImportErrmsg(p, pVtab);\n"
     "  if( rc ) goto abort_due_to_error;\n",
     "  rc = pModule->xNext(pCur->uc.pVCur);\n  sqlite3VtabImportErrmsg(p, pVtab);\n"
     "  if( rc ) goto abort_due_to_error;\n"
     f"  p->{READ}++;\n"),
    ("OP_VUpdate: a virtual-table change",
     "    }else{\n      p->nChange++;\n    }\n    if( rc ) goto abort_due_to_error;\n",
     "    }else{\n"
     f"      p->{WRITTEN}++;\n"
     "      p->nChange++;\n    }\n    if( rc ) goto abort_due_to_error;\n"),
]

# The reader, and a reset (workerd resets both counters before every run of a
# statement). Appended to the amalgamation, where struct Vdbe is visible.
READER = r"""
/* ---- tools/d1sqlite: D1's row counters ------------------------------------ */
SQLITE_API sqlite3_uint64 d1_rows(sqlite3_stmt *pStmt, int which){
  Vdbe *v = (Vdbe*)pStmt;
  if( v==0 || which<0 || which>1 ) return 0;
  return v->d1Rows[which];
}
SQLITE_API void d1_rows_reset(sqlite3_stmt *pStmt){
  Vdbe *v = (Vdbe*)pStmt;
  if( v ){ v->d1Rows[0] = 0; v->d1Rows[1] = 0; }
}

/* Not D1's: a speed-up for the Python binding. Steps pStmt to its end and writes every
** row as JSON, [[v1, v2, ...], ...], into *pzOut (free it with d1_free): one call and
** one json.loads instead of a ctypes call per value. Reals are written with 17
** significant digits, which read back as the very same double. Returns SQLITE_DONE, or
** the error sqlite3_step gave (then *pzOut is 0). */
#include <stdio.h>
static void d1JsonText(sqlite3_str *s, const unsigned char *z, int n){
  int i;
  sqlite3_str_appendchar(s, 1, '"');
  for(i=0; i<n; i++){
    unsigned char c = z[i];
    if( c=='"' || c=='\\' ){ sqlite3_str_appendchar(s, 1, '\\'); sqlite3_str_appendchar(s, 1, (char)c); }
    else if( c<0x20 ){ sqlite3_str_appendf(s, "\\u%04x", c); }
    else sqlite3_str_appendchar(s, 1, (char)c);
  }
  sqlite3_str_appendchar(s, 1, '"');
}
SQLITE_API int d1_run_json(sqlite3_stmt *pStmt, char **pzOut, int *pnOut){
  sqlite3_str *s = sqlite3_str_new(0);
  int nCol = sqlite3_column_count(pStmt), rc, i, nRow = 0;
  char buf[40];
  *pzOut = 0; *pnOut = 0;
  sqlite3_str_appendchar(s, 1, '[');
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    if( nRow++ ) sqlite3_str_appendchar(s, 1, ',');
    sqlite3_str_appendchar(s, 1, '[');
    for(i=0; i<nCol; i++){
      if( i ) sqlite3_str_appendchar(s, 1, ',');
      switch( sqlite3_column_type(pStmt, i) ){
        case SQLITE_INTEGER: sqlite3_str_appendf(s, "%lld", sqlite3_column_int64(pStmt, i)); break;
        case SQLITE_FLOAT:
          snprintf(buf, sizeof(buf), "%.17g", sqlite3_column_double(pStmt, i));
          sqlite3_str_appendall(s, buf);
          break;
        case SQLITE_NULL: sqlite3_str_appendall(s, "null"); break;
        default: {
          const unsigned char *z = sqlite3_column_text(pStmt, i);
          d1JsonText(s, z, sqlite3_column_bytes(pStmt, i));
        }
      }
    }
    sqlite3_str_appendchar(s, 1, ']');
  }
  sqlite3_str_appendchar(s, 1, ']');
  *pnOut = sqlite3_str_length(s);
  if( rc!=SQLITE_DONE ){ sqlite3_free(sqlite3_str_finish(s)); *pnOut = 0; return rc; }
  *pzOut = sqlite3_str_finish(s);
  return rc;
}
SQLITE_API void d1_free(void *p){ sqlite3_free(p); }
"""


def instrument(text: str) -> str:
    if f'#define SQLITE_VERSION        "{SQLITE_VERSION}"' not in text:
        raise SystemExit(f"d1sqlite: expected SQLite {SQLITE_VERSION} (workerd's); the amalgamation is another")
    for what, anchor, replacement in EDITS:
        found = text.count(anchor)
        if found != 1:
            raise SystemExit(f"d1sqlite: anchor for {what!r} found {found} times (want 1): SQLite changed?")
        text = text.replace(anchor, replacement)
    return text + READER


def build(src: Path, out: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("d1sqlite: no C compiler (cc/gcc) on PATH: apt-get install gcc")
    out.mkdir(parents=True, exist_ok=True)
    source = out / "sqlite3_d1.c"
    source.write_text(instrument((src / "sqlite3.c").read_text(encoding="utf-8")), encoding="utf-8")
    shutil.copy(src / "sqlite3.h", out / "sqlite3.h")
    lib = out / "libd1sqlite.so"
    tmp = out / "libd1sqlite.so.tmp"
    # D1's SQLite has JSON, math functions and FTS5; nothing here needs threads or extensions.
    subprocess.run(
        [cc, "-O1", "-fPIC", "-shared", "-o", str(tmp), str(source),
         "-DSQLITE_THREADSAFE=0", "-DSQLITE_OMIT_LOAD_EXTENSION", "-DSQLITE_ENABLE_MATH_FUNCTIONS",
         "-DSQLITE_DEFAULT_FOREIGN_KEYS=0", "-lm"],
        check=True,
    )
    tmp.replace(lib)
    source.unlink()
    return lib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT / "node_modules/better-sqlite3/deps/sqlite3")
    ap.add_argument("--out", type=Path, default=ROOT / ".cache/d1sqlite")
    args = ap.parse_args()
    if not (args.src / "sqlite3.c").is_file():
        sys.exit(f"d1sqlite: {args.src}/sqlite3.c not found (npm ci installs better-sqlite3)")
    print(build(args.src, args.out))


if __name__ == "__main__":
    main()
