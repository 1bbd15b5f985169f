# scale-report.awk - bench/run-scale's report: reads scale.tsv records
#   ok|fail|limit|na <TAB> source <TAB> live MiB <TAB> threads <TAB> RESULT fields or reason
# and writes the table (stdout and md), csv, the chart data (datadir) and
# the growth per GiB (least-squares slopes over the 1-thread points).
# Exit status 1 if a run failed or a point's checksum differs between sources.
function get(s, k,    n, i, kv, p) {
    n = split(s, kv, " ")
    for (i = 1; i <= n; i++) {
        p = index(kv[i], "=")
        if (p && substr(kv[i], 1, p - 1) == k) return substr(kv[i], p + 1)
    }
    return ""
}
# slope of y over x for the n pairs X[1..n], Y[1..n]
function slope(X, Y, n,    i, sx, sy, sxx, sxy, d) {
    if (n < 2) return ""
    for (i = 1; i <= n; i++) { sx += X[i]; sy += Y[i]; sxx += X[i] * X[i]; sxy += X[i] * Y[i] }
    d = n * sxx - sx * sx
    return d == 0 ? "" : (n * sxy - sx * sy) / d
}
BEGIN { ns = split(sources, S, " ") }
$1 == "na" { na[$2] = $5; next }
{
    key = $2 SUBSEP $3 SUBSEP $4
    if (!((($3 SUBSEP $4) in seenpt))) { seenpt[$3 SUBSEP $4] = 1; pts[++npts] = $3 SUBSEP $4 }
    if ($1 == "fail") { st[key] = "FAIL: " $5; bad = 1; next }
    if ($1 == "limit") { st[key] = "limit: " $5; next } # a known limit of stock libgc
    st[key] = "ok"; res[key] = $5
    ck = get($5, "checksum")
    if (!(($3 SUBSEP $4) in refck)) { refck[$3 SUBSEP $4] = ck; refsrc[$3 SUBSEP $4] = $2 }
    else if (refck[$3 SUBSEP $4] != ck) {
        st[key] = "FAIL: checksum " ck " differs from " refsrc[$3 SUBSEP $4] "'s " refck[$3 SUBSEP $4]
        bad = 1
    }
}
END {
    hdr = "| source | live MiB | threads | status | wall s | CPU s | GCs | ms per collection | max pause ms | heap peak MiB | dirty reads | read-and-clear ms per read | per GiB of heap |"
    sep = "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    print "# Scale: live heap and mutator threads" > md
    print "" > md; print header > md; print "" > md
    print "bench/scale: each thread keeps its share of the live heap in 1 KiB nodes and" > md
    print "allocates that much again, half replacing live nodes, half written into old ones." > md
    print "CPU s = user + system time of the process. ms per collection = stop-the-world time / pauses; read-and-clear = libgc-dune's" > md
    print "dirty-bit read per collection (dirty_read_ms / dirty_reads), and that per GiB of" > md
    print "heap (peak heap size). status ok = the run succeeded and its checksum equals the" > md
    print "first source's at the same point." > md
    print "" > md; print hdr > md; print sep > md
    print hdr; print sep
    print "source,live_mib,threads,status,wall_s,cpu_s,gcs,ms_per_collection,pause_max_ms,heap_peak_mib," \
          "dirty_reads,read_ms_per_read,read_ms_per_read_per_gib" > csv
    for (a = 1; a <= ns; a++) {
        s = S[a]
        if (s in na) {
            line = "| " s " | - | - | not available: " na[s] " | | | | | | | | | |"
            print line; print line > md
            continue
        }
        fh = datadir "/scale-heap-" s ".dat"; ft = datadir "/scale-threads-" s ".dat"
        printf "" > fh; printf "" > ft
        nh = 0; any = 0
        for (p = 1; p <= npts; p++) {
            split(pts[p], PT, SUBSEP); mib = PT[1]; t = PT[2]
            key = s SUBSEP mib SUBSEP t
            if (!(key in st)) continue
            r = res[key]
            wall = get(r, "wall_s"); gcs = get(r, "gcs"); pt = get(r, "pause_total_ms")
            np_ = get(r, "pauses"); pm = get(r, "pause_max_ms"); heap = get(r, "heap_peak_kb") / 1024
            reads = get(r, "dirty_reads"); rms = get(r, "dirty_read_ms")
            cpu = get(r, "user_s") + get(r, "sys_s")
            pergc = (np_ > 0) ? pt / np_ : ""
            perread = (reads > 0) ? rms / reads : ""
            pergib = (perread != "" && heap > 0) ? perread / (heap / 1024) : ""
            if (st[key] != "ok") {
                line = "| " s " | " mib " | " t " | " st[key] " | | | | | | | | | |"
            } else {
                any = 1
                line = sprintf("| %s | %d | %d | ok | %.2f | %.2f | %d | %.1f | %.1f | %.0f | %s | %s | %s |", s, mib, t,
                               wall, cpu, gcs, pergc, pm, heap, reads == "" ? "-" : reads,
                               perread == "" ? "-" : sprintf("%.3f", perread),
                               pergib == "" ? "-" : sprintf("%.3f", pergib))
                printf "%s,%d,%d,ok,%s,%.3f,%s,%s,%s,%.1f,%s,%s,%s\n", s, mib, t, wall, cpu, gcs, pergc, pm, heap,
                       reads, perread, pergib > csv
                if (t == 1) {
                    printf "%s %s %s %s\n", mib, wall, pergc, pm >> fh
                    nh++; GX[nh] = mib / 1024; GW[nh] = wall; GC_[nh] = pergc; GP[nh] = pm; GU[nh] = cpu
                    GH[nh] = heap / 1024; GR[nh] = perread
                }
                if (mib == tmib) printf "%s %s %s %s\n", t, wall, pergc, pm >> ft
            }
            if (st[key] != "ok") printf "%s,%d,%d,\"%s\",,,,,,,,,\n", s, mib, t, st[key] > csv
            print line; print line > md
        }
        close(fh); close(ft)
        if (any) plotted = plotted (plotted != "" ? " " : "") s
        # growth per GiB over the 1-thread points
        sw = slope(GX, GW, nh); sc = slope(GX, GC_, nh); sp = slope(GX, GP, nh); su = slope(GX, GU, nh)
        sr = (GR[1] != "") ? slope(GH, GR, nh) : ""
        if (sw != "")
            grow[++ngrow] = sprintf("| %s | %.0f-%.0f | %.2f | %.2f | %.1f | %.1f | %s |", s, GX[1] * 1024,
                                    GX[nh] * 1024, sw, su, sc, sp, sr == "" ? "-" : sprintf("%.2f", sr))
        delete GX; delete GW; delete GC_; delete GP; delete GH; delete GR; delete GU
    }
    print "" > md
    print "## Growth per GiB (least-squares slope over the 1-thread points)" > md
    print "" > md
    print "| source | live MiB range | wall s per GiB live | CPU s per GiB live | ms per collection per GiB live | max pause ms per GiB live | read-and-clear ms per read per GiB heap |" > md
    print "|---|---|---|---|---|---|---|" > md
    for (i = 1; i <= ngrow; i++) print grow[i] > md
    print "" > md
    print "Charts: scale-heap.png (against live heap), scale-threads.png (against threads)." > md
    print plotted > (datadir "/scale-plotted")
    print ""
    print "growth per GiB: source | live MiB | wall s | CPU s | ms/collection | max pause ms | read-and-clear ms/read per GiB heap"
    for (i = 1; i <= ngrow; i++) print grow[i]
    close(md); close(csv)
    exit bad
}
