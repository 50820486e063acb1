//! A validated module decoded for interpretation: sections as plain data,
//! function bodies as operator vectors with their block structure resolved
//! once (matching `end`/`else` positions, `br_table` targets).

use super::types::{Registry, TypeId, VT, val_type};
use std::collections::HashMap;
use wasmparser::{
    DataKind, ElementItems, ElementKind, ExternalKind, Operator, Parser, Payload, TableInit, TypeRef, Validator,
    WasmFeatures,
};

#[derive(Clone, Copy, Debug)]
pub struct TableTy {
    pub elem: VT,
    pub min: u64,
    pub max: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
pub struct MemTy {
    pub min: u64,
    pub max: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
pub struct GlobalTy {
    pub ty: VT,
    pub mutable: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum ImportKind {
    Func(TypeId),
    Table(TableTy),
    Memory(MemTy),
    Global(GlobalTy),
    Tag(TypeId),
}

pub struct Import<'a> {
    pub module: &'a str,
    pub name: &'a str,
    pub kind: ImportKind,
}

/// A constant expression, `end` included.
pub type Expr<'a> = Vec<Operator<'a>>;

pub struct Code<'a> {
    /// Declared locals (parameters not included).
    pub locals: Vec<VT>,
    pub ops: Vec<Operator<'a>>,
    /// For `block`, `loop`, `if`, `try_table` and `else`: the index of the
    /// matching `end`.
    pub end: Vec<u32>,
    /// For `if`: the index of its `else`, when it has one.
    pub else_at: HashMap<u32, u32>,
    /// For `br_table`: its targets, the default last.
    pub br_tables: HashMap<u32, Box<[u32]>>,
}

pub enum ElemMode<'a> {
    Passive,
    Declared,
    Active { table: u32, offset: Expr<'a> },
}

pub struct Elem<'a> {
    pub mode: ElemMode<'a>,
    pub items: Vec<Expr<'a>>,
}

pub struct DataSeg<'a> {
    pub active: Option<(u32, Expr<'a>)>,
    pub bytes: &'a [u8],
}

#[derive(Default)]
pub struct Module<'a> {
    /// Canonical id of every module type index.
    pub types: Vec<TypeId>,
    pub imports: Vec<Import<'a>>,
    /// Type of every function, imported ones first.
    pub funcs: Vec<TypeId>,
    pub code: Vec<Code<'a>>,
    pub tables: Vec<(TableTy, Option<Expr<'a>>)>,
    pub memories: Vec<MemTy>,
    pub globals: Vec<(GlobalTy, Expr<'a>)>,
    pub tags: Vec<TypeId>,
    pub exports: Vec<(&'a str, ExternalKind, u32)>,
    pub start: Option<u32>,
    pub elems: Vec<Elem<'a>>,
    pub datas: Vec<DataSeg<'a>>,
}

impl<'a> Module<'a> {
    pub fn imported_funcs(&self) -> usize {
        self.imports.iter().filter(|i| matches!(i.kind, ImportKind::Func(_))).count()
    }
}

/// Validates `bytes` under `features` and decodes it, canonicalizing its
/// types into `registry`.
pub fn decode<'a>(bytes: &'a [u8], features: WasmFeatures, registry: &mut Registry) -> Result<Module<'a>, String> {
    Validator::new_with_features(features).validate_all(bytes).map_err(|e| e.message().to_string())?;
    let mut m = Module::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        match payload {
            Payload::TypeSection(r) => {
                for group in r {
                    let group = group.map_err(|e| e.to_string())?;
                    let first = m.types.len() as u32;
                    let ids = registry.define(&group, first, &m.types)?;
                    m.types.extend(ids);
                }
            }
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    let kind = match import.ty {
                        TypeRef::Func(t) => {
                            m.funcs.push(m.types[t as usize]);
                            ImportKind::Func(m.types[t as usize])
                        }
                        TypeRef::Table(t) => ImportKind::Table(table_ty(&t, &m.types)?),
                        TypeRef::Memory(t) => ImportKind::Memory(MemTy { min: t.initial, max: t.maximum }),
                        TypeRef::Global(g) => ImportKind::Global(global_ty(&g, &m.types)?),
                        TypeRef::Tag(t) => ImportKind::Tag(m.types[t.func_type_idx as usize]),
                        TypeRef::FuncExact(_) => return Err("exact function imports are out of scope".into()),
                    };
                    m.imports.push(Import { module: import.module, name: import.name, kind });
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    let t = t.map_err(|e| e.to_string())?;
                    m.funcs.push(m.types[t as usize]);
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    let t = t.map_err(|e| e.to_string())?;
                    let init = match t.init {
                        TableInit::RefNull => None,
                        TableInit::Expr(e) => Some(expr(&e)?),
                    };
                    m.tables.push((table_ty(&t.ty, &m.types)?, init));
                }
            }
            Payload::MemorySection(r) => {
                for t in r {
                    let t = t.map_err(|e| e.to_string())?;
                    m.memories.push(MemTy { min: t.initial, max: t.maximum });
                }
            }
            Payload::TagSection(r) => {
                for t in r {
                    let t = t.map_err(|e| e.to_string())?;
                    m.tags.push(m.types[t.func_type_idx as usize]);
                }
            }
            Payload::GlobalSection(r) => {
                for g in r {
                    let g = g.map_err(|e| e.to_string())?;
                    m.globals.push((global_ty(&g.ty, &m.types)?, expr(&g.init_expr)?));
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(|e| e.to_string())?;
                    m.exports.push((e.name, e.kind, e.index));
                }
            }
            Payload::StartSection { func, .. } => m.start = Some(func),
            Payload::ElementSection(r) => {
                for e in r {
                    let e = e.map_err(|e| e.to_string())?;
                    let mode = match e.kind {
                        ElementKind::Passive => ElemMode::Passive,
                        ElementKind::Declared => ElemMode::Declared,
                        ElementKind::Active { table_index, offset_expr } => {
                            ElemMode::Active { table: table_index.unwrap_or(0), offset: expr(&offset_expr)? }
                        }
                    };
                    let items = match e.items {
                        ElementItems::Functions(r) => r
                            .into_iter()
                            .map(|f| {
                                let function_index = f.map_err(|e| e.to_string())?;
                                Ok(vec![Operator::RefFunc { function_index }, Operator::End])
                            })
                            .collect::<Result<Vec<_>, String>>()?,
                        ElementItems::Expressions(_, r) => r
                            .into_iter()
                            .map(|c| expr(&c.map_err(|e| e.to_string())?))
                            .collect::<Result<Vec<_>, String>>()?,
                    };
                    m.elems.push(Elem { mode, items });
                }
            }
            Payload::DataSection(r) => {
                for d in r {
                    let d = d.map_err(|e| e.to_string())?;
                    let active = match d.kind {
                        DataKind::Passive => None,
                        DataKind::Active { memory_index, offset_expr } => Some((memory_index, expr(&offset_expr)?)),
                    };
                    m.datas.push(DataSeg { active, bytes: d.data });
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut locals = Vec::new();
                for l in body.get_locals_reader().map_err(|e| e.to_string())? {
                    let (n, t) = l.map_err(|e| e.to_string())?;
                    let t = val_type(t, &m.types)?;
                    locals.extend(std::iter::repeat_n(t, n as usize));
                }
                let mut ops = Vec::new();
                let mut reader = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !reader.eof() {
                    ops.push(reader.read().map_err(|e| e.to_string())?);
                }
                m.code.push(structure(locals, ops)?);
            }
            _ => {}
        }
    }
    Ok(m)
}

fn expr<'a>(c: &wasmparser::ConstExpr<'a>) -> Result<Expr<'a>, String> {
    let mut reader = c.get_operators_reader();
    let mut ops = Vec::new();
    while !reader.eof() {
        ops.push(reader.read().map_err(|e| e.to_string())?);
    }
    Ok(ops)
}

fn table_ty(t: &wasmparser::TableType, types: &[TypeId]) -> Result<TableTy, String> {
    if t.table64 || t.shared {
        return Err("64-bit and shared tables are out of scope".into());
    }
    Ok(TableTy { elem: val_type(wasmparser::ValType::Ref(t.element_type), types)?, min: t.initial, max: t.maximum })
}

fn global_ty(g: &wasmparser::GlobalType, types: &[TypeId]) -> Result<GlobalTy, String> {
    Ok(GlobalTy { ty: val_type(g.content_type, types)?, mutable: g.mutable })
}

/// Resolves the block structure of a function body.
fn structure<'a>(locals: Vec<VT>, ops: Vec<Operator<'a>>) -> Result<Code<'a>, String> {
    let mut end = vec![u32::MAX; ops.len()];
    let mut else_at = HashMap::new();
    let mut br_tables = HashMap::new();
    let mut open: Vec<u32> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let i = i as u32;
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } | Operator::TryTable { .. } => {
                open.push(i)
            }
            Operator::Else => {
                let start = *open.last().ok_or("else outside a block")?;
                else_at.insert(start, i);
                open.push(i);
            }
            Operator::End => {
                // The function body's own `end` closes no block.
                if let Some(start) = open.pop() {
                    end[start as usize] = i;
                    if matches!(ops[start as usize], Operator::Else) {
                        let if_at = open.pop().ok_or("else without if")?;
                        end[if_at as usize] = i;
                    }
                }
            }
            Operator::BrTable { targets } => {
                let mut all: Vec<u32> = targets.targets().collect::<Result<_, _>>().map_err(|e| e.to_string())?;
                all.push(targets.default());
                br_tables.insert(i, all.into_boxed_slice());
            }
            _ => {}
        }
    }
    Ok(Code { locals, ops, end, else_at, br_tables })
}
