"""An :class:`~ffnn.explanation.Explanation` as one self-contained HTML page that works offline.

The page draws the network, steps through the forward then the backward pass layer by layer, and a
click on any weight shows its gradient three ways: the error-term formula of the author's notation,
Gashler's path sum with its paths listed (:mod:`ffnn.explanation.paths`), and central finite
differences (:func:`ffnn.gradcheck.finite_differences`). Everything is in the one file: the data as
JSON in a ``<script type="application/json">`` block (with ``<``, ``>`` and ``&`` escaped, so no
text in it can close the block), the style and the script inline, no URL anywhere. The script
writes text with ``textContent`` only, never as HTML.
"""

from __future__ import annotations

import html
import json
import math

from ..gradcheck import finite_differences
from .expr import number
from .paths import path_count, path_sum
from .text import equation_lines

__all__ = ["page", "page_data", "MAX_PATH_TERMS"]

#: The most path products the page computes for one weight (over all samples); beyond, it gives the count.
MAX_PATH_TERMS = 20000
#: Paths listed per weight.
LISTED_PATHS = 32


def _finite(v):
    return v if isinstance(v, float) and math.isfinite(v) else None


def page_data(expl, net):
    """The page's data: everything the script shows, as JSON-ready values."""
    nt = expl.notation
    L = len(expl.sizes) - 1
    fd = finite_differences(net, expl.X, expl.T, expl.loss)
    grads = {e.lhs.key: e for e in expl.equations() if e.lhs.key[0] == "dW"}
    weights = []
    for l in range(1, L + 1):
        per = path_count(expl.sizes, l) * expl.n_samples
        for k in range(expl.sizes[l - 1]):
            for j in range(expl.sizes[l]):
                eq = grads[("dW", l, k, j)]
                paths = None
                if per <= MAX_PATH_TERMS:
                    p = path_sum(expl.values, expl.sizes, l, k, j, listed=LISTED_PATHS)
                    paths = {"total": p.total, "count": p.count,
                             "listed": [{"sample": s + nt.base, "units": [u + nt.base for u in units],
                                         "term": t} for s, units, t in p.paths]}
                weights.append({"l": l, "k": k, "j": j, "symbol": nt.w(l, k, j), "ffnn": f"W[{l}][{k}, {j}]",
                                "value": expl.values[("W", l, k, j)], "gradient": expl.values[("dW", l, k, j)],
                                "gradient_symbol": eq.lhs.symbol, "factor": eq.lhs.factor,
                                "formula": equation_lines(eq, width=10_000, max_terms=None, indent=0),
                                "paths": paths, "path_count": per,
                                "fd": _finite(float(fd[f"W[{l}]"][k, j]))})
    nodes = [[{"symbol": nt.a(l, j, 0), "value": expl.values[("a", l, 0, j)]} for j in range(s)]
             for l, s in enumerate(expl.sizes)]
    steps = [{"phase": s.phase, "layer": s.layer, "title": s.title,
              "lines": [line for e in s.equations for line in equation_lines(e, width=10_000, indent=0)]}
             for s in expl.steps]
    return {"author": nt.author, "notation": nt.name, "title": nt.title, "sizes": list(expl.sizes),
            "activations": list(expl.activations), "loss": expl.loss, "eta": expl.learning_rate,
            "samples": expl.n_samples, "conventions": list(expl.conventions), "steps": steps, "nodes": nodes,
            "weights": weights, "digits": 4, "fd_h": 1e-4, "base": nt.base}


def _json_for_script(data) -> str:
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def page(expl, net) -> str:
    """The HTML page (a str) of ``expl``, the step of ``net`` that :func:`ffnn.explain` recorded."""
    data = page_data(expl, net)
    who = "ffnn's notation" if expl.notation.name == "ffnn" else f"{expl.notation.author}'s notation"
    title = html.escape(f"One training step of {' → '.join(map(str, expl.sizes))} in {who}")
    sub = html.escape(f"activations {', '.join(expl.activations)}; loss {expl.loss}; {expl.n_samples} sample"
                      f"{'s' if expl.n_samples != 1 else ''}; η = {number(expl.learning_rate, 6)}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{title}</h1>
<p class="sub">{sub}</p>
<ul id="conventions"></ul>
<div id="main">
<div id="left">
<svg id="net" role="img" aria-label="the network: click a weight to see its gradient three ways"></svg>
<div id="controls"><button id="prev" type="button">◀ previous</button>
<span id="where"></span><button id="next" type="button">next ▶</button></div>
<ol id="steplist"></ol>
</div>
<div id="right">
<h2 id="steptitle"></h2>
<div id="equations"></div>
<div id="weight" hidden>
<h2 id="wtitle"></h2>
<h3>1. By the error terms</h3><div id="wformula"></div>
<h3>2. By Gashler's path sum</h3><div id="wpaths"></div>
<h3>3. By central finite differences</h3><div id="wfd"></div>
<p id="wagree"></p>
</div>
</div>
</div>
<script type="application/json" id="data">{_json_for_script(data)}</script>
<script>{_JS}</script>
</body>
</html>
"""


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;max-width:1400px}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.1em;margin:.6em 0 .3em}h3{font-size:1em;margin:.8em 0 .2em}
.sub{color:#555;margin:0 0 .6em}#conventions{color:#444;font-size:.9em}
#main{display:flex;gap:1.5em;flex-wrap:wrap}#left{flex:1 1 420px}#right{flex:2 1 520px;min-width:0}
svg{width:100%;height:auto;border:1px solid #ddd;background:#fcfcfc}
.edge{stroke:#bbb;stroke-width:1.5;cursor:pointer}.edge:hover{stroke:#06c;stroke-width:4}
.edge.active{stroke:#e60;stroke-width:2.5}.edge.chosen{stroke:#c00;stroke-width:4}
.node{fill:#fff;stroke:#333;stroke-width:1.5}.node.active{fill:#fd8}
.label{font-size:11px;font-family:monospace;pointer-events:none}
#controls{margin:.6em 0;display:flex;gap:.8em;align-items:center}#steplist{font-size:.9em;padding-left:1.6em}
#steplist li{cursor:pointer}#steplist li.current{font-weight:bold;color:#c50}
.eq,.line{font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere;margin:.15em 0}
#weight{border-top:2px solid #c00;margin-top:1em}
table{border-collapse:collapse;font-family:monospace;font-size:.9em}td,th{padding:.1em .6em;text-align:right}
"""

_JS = r"""
(function(){
"use strict";
var D=JSON.parse(document.getElementById("data").textContent);
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
function num(v){if(v===null||v===undefined)return "n/a";if(v===0)return "0";return Number(v.toPrecision(D.digits+2)).toString().replace("-","\u2212");}
var ul=document.getElementById("conventions");
D.conventions.forEach(function(c){ul.appendChild(el("li",null,c));});
var NS="http://www.w3.org/2000/svg",svg=document.getElementById("net");
var L=D.sizes.length-1,maxS=Math.max.apply(null,D.sizes),W=Math.max(360,140*(L+1)),H=Math.max(220,48*maxS+40);
svg.setAttribute("viewBox","0 0 "+W+" "+H);
function pos(l,j){var s=D.sizes[l];return [60+(W-120)*l/Math.max(1,L),H/2+(j-(s-1)/2)*Math.min(48,(H-40)/Math.max(1,s))];}
function sv(tag,attrs){var e=document.createElementNS(NS,tag);for(var k in attrs)e.setAttribute(k,attrs[k]);return e;}
var edges=[];
D.weights.forEach(function(w,i){
  var a=pos(w.l-1,w.k),b=pos(w.l,w.j);
  var e=sv("line",{x1:a[0],y1:a[1],x2:b[0],y2:b[1],"class":"edge","data-l":w.l,"data-index":i});
  var t=sv("title",{});t.textContent=w.symbol+" = "+num(w.value);e.appendChild(t);
  e.addEventListener("click",function(){showWeight(i);});
  svg.appendChild(e);edges.push(e);
});
var nodes=[];
D.nodes.forEach(function(layer,l){nodes.push([]);layer.forEach(function(n,j){
  var p=pos(l,j),c=sv("circle",{cx:p[0],cy:p[1],r:13,"class":"node","data-l":l});
  var t=sv("title",{});t.textContent=n.symbol+" = "+num(n.value);c.appendChild(t);svg.appendChild(c);nodes[l].push(c);
  var lab=sv("text",{x:p[0]-12,y:p[1]-17,"class":"label"});lab.textContent=n.symbol;svg.appendChild(lab);
});});
var cur=0,list=document.getElementById("steplist");
D.steps.forEach(function(s,i){var li=el("li",null,s.title);li.addEventListener("click",function(){show(i);});list.appendChild(li);});
function show(i){
  cur=Math.max(0,Math.min(D.steps.length-1,i));var s=D.steps[cur];
  document.getElementById("where").textContent="step "+(cur+1)+" of "+D.steps.length;
  document.getElementById("steptitle").textContent=s.title;
  var box=document.getElementById("equations");box.textContent="";
  s.lines.forEach(function(line){box.appendChild(el("div","eq",line));});
  Array.prototype.forEach.call(list.children,function(li,k){li.className=k===cur?"current":"";});
  edges.forEach(function(e){e.classList.toggle("active",s.layer!==null&&+e.getAttribute("data-l")===s.layer);});
  nodes.forEach(function(layer,l){layer.forEach(function(c){c.classList.toggle("active",s.layer!==null&&l===s.layer);});});
  document.getElementById("prev").disabled=cur===0;document.getElementById("next").disabled=cur===D.steps.length-1;
}
document.getElementById("prev").addEventListener("click",function(){show(cur-1);});
document.getElementById("next").addEventListener("click",function(){show(cur+1);});
function showWeight(i){
  var w=D.weights[i];edges.forEach(function(e,k){e.classList.toggle("chosen",k===i);});
  document.getElementById("weight").hidden=false;
  document.getElementById("wtitle").textContent=w.gradient_symbol+" (ffnn: dJ/d"+w.ffnn+")";
  var f=document.getElementById("wformula");f.textContent="";
  w.formula.forEach(function(line){f.appendChild(el("div","line",line));});
  var p=document.getElementById("wpaths");p.textContent="";
  var g=w.factor*w.gradient;
  if(w.paths===null){p.appendChild(el("p",null,w.path_count+" paths: too many to form one by one here."));}
  else{
    p.appendChild(el("p","line","sum over "+w.paths.count+" path"+(w.paths.count===1?"":"s")+" = "+num(w.factor*w.paths.total)));
    var t=el("table"),h=el("tr");["sample","units "+(w.l)+" \u2192 "+L,"term"].forEach(function(x){h.appendChild(el("th",null,x));});t.appendChild(h);
    w.paths.listed.forEach(function(q){var r=el("tr");r.appendChild(el("td",null,String(q.sample)));
      r.appendChild(el("td",null,q.units.join(" \u2192 ")));r.appendChild(el("td",null,num(w.factor*q.term)));t.appendChild(r);});
    p.appendChild(t);
    if(w.paths.count>w.paths.listed.length)p.appendChild(el("p",null,"\u2026 and "+(w.paths.count-w.paths.listed.length)+" more paths"));
  }
  var d=document.getElementById("wfd");d.textContent="";
  d.appendChild(el("p","line","(J(w \u2212 2h) \u2212 8J(w \u2212 h) + 8J(w + h) \u2212 J(w + 2h))/12h, h = "+D.fd_h+": "+(w.fd===null?"n/a (a kink of the activation lies within the steps)":num(w.factor*w.fd))));
  var parts=[["error terms",g]];if(w.paths!==null)parts.push(["path sum",w.factor*w.paths.total]);if(w.fd!==null)parts.push(["finite differences",w.factor*w.fd]);
  var worst=0;parts.forEach(function(x){worst=Math.max(worst,Math.abs(x[1]-g)/Math.max(Math.abs(g),1e-12));});
  document.getElementById("wagree").textContent=parts.map(function(x){return x[0]+" "+num(x[1]);}).join("; ")+" \u2014 largest relative difference "+worst.toExponential(1);
  document.getElementById("weight").setAttribute("data-worst",String(worst));
}
show(0);
})();
"""
